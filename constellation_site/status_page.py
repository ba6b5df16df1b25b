"""The operators' status page (`/status/`) and the JSON it polls.

- `/api/constellation/status`: this node's summary from its engine's figures (state, apex,
  finalized apex, quanta/s, finality p50/p99, its auditors' lag, its last error).
- `/api/constellation/status/all`: every node of the settings with its summary, each asked
  by this server (a browser could not read other nodes across origins); one answer serves
  every caller for `ALL_CACHE_S`, so a page left open costs the other nodes one request per
  node per interval, however many pages are open.
The page itself (`templates/status.html`, `static/js/status.js`) draws them live with a small
throughput/finality chart it accumulates while open.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from constellation_site.views import every_node_fetch
from quanta.core.metrics import LatencyHistogram
from quanta.node.figures import figures_read, wall_ms
from quanta.node_status import status_read

NODE_TIMEOUT_S = 2.0
ALL_CACHE_S = 1.0
_FETCHES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="node-status")
_all_cache: dict[str, tuple[float, dict[str, object]]] = {}
_all_lock = asyncio.Lock()


def node_summary() -> dict[str, object]:
    """Returns this node's summary for the status page (blocking: Redis reads); its
    finality figures are those of the last few seconds (`HistogramWindow`)."""
    status = status_read()
    summary: dict[str, object] = {
        "state": status.state,
        "apex": status.apex,
        "reason": status.reason,
    }
    figures = figures_read()
    if figures is None:
        return {**summary, "last_error": {"reason": "engine figures missing", "at_ms": wall_ms()}}
    finality = figures.get("finality_recent")
    histogram = LatencyHistogram.from_json(finality) if isinstance(finality, dict) else None
    auditors = figures.get("auditors")
    return {
        **summary,
        "role": figures.get("role"),
        "finalized_apex": figures.get("finalized_apex"),
        "alpha_apex": figures.get("alpha_apex"),
        "quanta_per_s": figures.get("quanta_per_s"),
        "finality_count": 0 if histogram is None else histogram.count,
        "finality_p50_ms": None if histogram is None else histogram.quantile_ms(0.5),
        "finality_p99_ms": None if histogram is None else histogram.quantile_ms(0.99),
        "last_error": figures.get("last_error"),
        "auditors": {
            key: {"lag": seen.get("lag"), "connected": seen.get("connected")}
            for key, seen in (auditors.items() if isinstance(auditors, dict) else ())
            if isinstance(seen, dict)
        },
        "published_ms": figures.get("published_ms"),
    }


@require_GET
def node_status(request: HttpRequest) -> JsonResponse:
    """Returns this node's summary."""
    return JsonResponse(node_summary())


def _fetch_summary(address: str) -> dict[str, object]:
    """Returns another node's summary (blocking: run in a thread)."""
    if not address.startswith(("http://", "https://")):
        return {"state": "unknown", "last_error": {"reason": "no HTTP address", "at_ms": 0}}
    url = address.rstrip("/") + "/api/constellation/status"
    try:
        with urllib.request.urlopen(url, timeout=NODE_TIMEOUT_S) as response:  # noqa: S310
            found = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError) as error:
        return {"state": "unreachable", "last_error": {"reason": str(error), "at_ms": wall_ms()}}
    return found if isinstance(found, dict) else {"state": "unknown"}


async def _all_fetch() -> dict[str, object]:
    nodes = await every_node_fetch(_FETCHES, _fetch_summary)
    return {"nodes": nodes, "now_ms": wall_ms()}


async def constellation_status(request: HttpRequest) -> JsonResponse:
    """Returns every node's summary (cached for ALL_CACHE_S, one fetch in flight at most)."""
    async with _all_lock:
        cached = _all_cache.get("all")
        if cached is None or time.monotonic() - cached[0] > ALL_CACHE_S:
            cached = (time.monotonic(), await _all_fetch())
            _all_cache["all"] = cached
    return JsonResponse(cached[1])


@require_GET
def status_page(request: HttpRequest) -> HttpResponse:
    """Returns the operators' status page."""
    return render(request, "status.html")
