"""The trader's page, its static files, and the node states it shows.

The page is one template (`templates/index.html`) driving plain ES modules from `static/js/`;
everything a trader does goes from the browser to the gateway (`/ws/`) signed with a key that
never leaves the browser. Static files are served through the staticfiles finders even when
DEBUG is off, so a node started with daphne alone serves a working page; a production setup
puts `collectstatic` output behind a real web server instead.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.staticfiles.views import serve
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.csp import CSP
from django.views.decorators.http import require_GET

from quanta.core.keys import encode_public_key
from quanta.selectors import settings_current

NODE_INFO_TIMEOUT_S = 2.0
NODES_CACHE_S = 5.0
"""How long one answer of `/api/constellation/nodes` is served to everyone."""
# The other nodes are asked on threads of their own: on the default executor, a few slow
# nodes per request blocked what every WebSocket connect needs (the session's key load).
_NODE_FETCHES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="node-info")
_nodes_cache: dict[str, tuple[float, dict[str, object]]] = {}
_nodes_lock = asyncio.Lock()


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """Returns the trader's page. Its fetches and WebSockets may reach, besides its own node,
    the nodes the settings in force name: after an alpha replacement the page reads their
    settings chains and connects to the new alpha (static/js/client.js, `refreshChain`)."""
    response = render(request, "index.html", {"demo_mode": settings.DEMO_MODE})
    current = settings_current()
    if current is not None:
        nodes = node_sources(auditor.address for auditor in current.auditors)
        config = {**settings.SECURE_CSP, "connect-src": [CSP.SELF, *nodes]}
        response._csp_config = config  # type: ignore[attr-defined] # Django's csp_override
    return response


def node_sources(addresses: Iterable[str]) -> list[str]:
    """Returns the CSP sources of the nodes at `addresses`: each http(s) origin and its
    ws(s) form; anything else (not an address a page can reach) is left out."""
    sources: list[str] = []
    for address in addresses:
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            continue
        socket = "wss" if parts.scheme == "https" else "ws"
        for source in (f"{parts.scheme}://{parts.netloc}", f"{socket}://{parts.netloc}"):
            if source not in sources:
                sources.append(source)
    return sources


@require_GET
def static_asset(request: HttpRequest, path: str) -> HttpResponse | FileResponse:
    """Returns one static file found by the staticfiles finders (404 when there is none)."""
    return serve(request, path, insecure=True)


def _node_state(address: str) -> dict[str, object]:
    """Returns a node's state and apex from its public info (blocking: run in a thread)."""
    if not address.startswith(("http://", "https://")):
        return {"state": "unknown", "error": "no HTTP address"}
    url = address.rstrip("/") + "/api/constellation/info"
    try:
        with urllib.request.urlopen(url, timeout=NODE_INFO_TIMEOUT_S) as response:  # noqa: S310
            info = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError) as error:
        return {"state": "unreachable", "error": str(error)}
    return {"state": info.get("state", "unknown"), "apex": info.get("apex")}


async def constellation_nodes(request: HttpRequest) -> JsonResponse:
    """Returns every node of the settings with its state, asked from the server side (the
    browser could not read other nodes' info across origins). One answer serves every caller
    for NODES_CACHE_S, and concurrent callers share the one fetch in flight, so requests cost
    the other nodes at most one round of fetches per interval."""
    async with _nodes_lock:
        cached = _nodes_cache.get("nodes")
        if cached is None or time.monotonic() - cached[0] > NODES_CACHE_S:
            cached = (time.monotonic(), await _nodes_fetch())
            _nodes_cache["nodes"] = cached
    response = JsonResponse(cached[1])
    # Public: the page of another node reads it once it follows an alpha replacement.
    response["Access-Control-Allow-Origin"] = "*"
    return response


async def every_node_fetch(
    executor: ThreadPoolExecutor, fetch: Callable[[str], dict[str, object]]
) -> list[dict[str, object]]:
    """Returns, for every node of the settings in force (none before initialization), its
    identity and what `fetch(address)` read from it, the fetches run at once on `executor`."""
    current = await sync_to_async(settings_current)()
    if current is None:
        return []
    loop = asyncio.get_running_loop()
    found = await asyncio.gather(
        *(loop.run_in_executor(executor, fetch, a.address) for a in current.auditors)
    )
    return [
        {
            "index": index,
            "public_key": encode_public_key(auditor.public_key),
            "address": auditor.address,
            "is_alpha": auditor.public_key == current.alpha,
            **read,
        }
        for index, (auditor, read) in enumerate(zip(current.auditors, found, strict=True))
    ]


async def _nodes_fetch() -> dict[str, object]:
    return {"nodes": await every_node_fetch(_NODE_FETCHES, _node_state)}
