"""HTTP endpoints a node joining empty reads (`quanta.node.join`): any node's last snapshot,
its persisted quanta, and its state attestations. Nothing here is trusted by the reader: the
snapshot and the quanta count only once a majority attested the state hash they lead to.

Reads only (GET), bounded: one snapshot encoding per snapshot apex (cached), quanta in pages
of `QUANTA_PAGE`, one attestation per answer. Not there yet (no snapshot, no attestation at
that apex) is 404; a parameter that is not an apex is 400.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from quanta.core.state_snapshot import SnapshotError
from quanta.node.join import QUANTA_PAGE, attestation_json, quanta_page, served_snapshot
from quanta.node_identity import node_keypair

BINARY = "application/octet-stream"


def _refused(status: int, text: str) -> JsonResponse:
    return JsonResponse({"status": status, "description": text}, status=status)


def _apex_param(request: HttpRequest, name: str) -> int | None:
    try:
        value = int(request.GET.get(name, ""))
    except ValueError:
        return None
    return value if 0 <= value < 2**64 else None


@require_GET
def snapshot(request: HttpRequest) -> HttpResponse:
    """Returns this node's last snapshot (`quanta.core.state_snapshot` bytes)."""
    try:
        served = served_snapshot()
    except SnapshotError as error:
        return _refused(500, str(error))
    if served is None:
        return _refused(404, "no snapshot yet (the node is not initialized)")
    apex, data = served
    response = HttpResponse(data, content_type=BINARY)
    response["X-Snapshot-Apex"] = str(apex)
    response["X-Attest-Every"] = str(settings.STATE_ATTEST_EVERY)
    return response


@require_GET
def quanta(request: HttpRequest) -> HttpResponse:
    """Returns the persisted quanta above `after`, `limit` (a page) at most; empty: none yet."""
    after = _apex_param(request, "after")
    if after is None:
        return _refused(400, "after: an apex (an integer from 0)")
    limit = _apex_param(request, "limit") if "limit" in request.GET else QUANTA_PAGE
    if limit is None or not 1 <= limit <= QUANTA_PAGE:
        return _refused(400, f"limit: from 1 to {QUANTA_PAGE}")
    return HttpResponse(quanta_page(after, limit), content_type=BINARY)


@require_GET
def attestation(request: HttpRequest) -> JsonResponse:
    """Returns this node's signed state hash at `apex`."""
    apex = _apex_param(request, "apex")
    if apex is None:
        return _refused(400, "apex: an apex (an integer from 0)")
    found = attestation_json(apex, node_keypair())
    if found is None:
        return _refused(404, f"this node attested no state hash at apex {apex}")
    return JsonResponse(found)
