"""`/healthz` and `/readyz` for load balancers and process supervisors.

- `/healthz` (liveness): 200 whenever this web process answers at all. It reads nothing, so
  a slow database or Redis never makes a supervisor restart a healthy web process.
- `/readyz` (readiness): 200 only when the node can serve: Redis answers, PostgreSQL answers,
  the engine published its figures within `FIGURES_FRESH_S` (it runs) and says Ready. Else 503,
  with every check and its outcome in the JSON body, so an operator sees which one failed.
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from quanta.node.figures import figures_read, wall_ms
from quanta.node_status import status_read

FIGURES_FRESH_S = 10.0
"""Figures older than this mean the engine stopped publishing (it publishes twice a second)."""


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Returns 200: the web process is alive."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # Any failure of the database is a reason not to be ready.
        return f"database: {error}"
    return None


def _check_engine() -> str | None:
    try:
        status = status_read()
        figures = figures_read()
    except Exception as error:  # Redis down or unreachable.
        return f"redis: {error}"
    if figures is None:
        return "engine: no figures published (not running?)"
    age_s = (wall_ms() - int(str(figures.get("published_ms", 0)))) / 1000
    if age_s > FIGURES_FRESH_S:
        return f"engine: figures {age_s:.0f} s old (stalled?)"
    if status.state != "Ready":
        return f"engine: {status.state} ({status.reason})"
    return None


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Returns 200 if the node is Ready and its database and Redis answer, else 503."""
    failures = [f for f in (_check_database(), _check_engine()) if f is not None]
    if failures:
        return JsonResponse({"status": "not ready", "failures": failures}, status=503)
    return JsonResponse({"status": "ready"})
