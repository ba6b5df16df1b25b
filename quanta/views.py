"""HTTP endpoints of a node: public constellation info and initialization."""

from __future__ import annotations

import base64
import binascii
import json

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from quanta.core.settings_json import settings_to_json
from quanta.core.xdr.codec import decode
from quanta.core.xdr.schema import ConstellationSettings
from quanta.engine_client import engine_ask
from quanta.models import EvidenceRecord, SettingsRecord, SnapshotRecord
from quanta.node_status import status_read
from quanta.settings_drafts import engine_settings_update

INIT_TIMEOUT_S = 30.0


# The one JSON form of the settings (shared with `init_constellation --settings-file`).
settings_json = settings_to_json


def _latest_settings() -> ConstellationSettings | None:
    record = SettingsRecord.objects.order_by("-version").first()
    return None if record is None else decode(ConstellationSettings, bytes(record.data))


@require_GET
def constellation_info(request: HttpRequest) -> JsonResponse:
    """Returns the node's state and apex, how many evidence records it keeps, and the
    constellation's public settings."""
    status = status_read()
    info: dict[str, object] = {
        "state": status.state,
        "apex": status.apex,
        "reason": status.reason,
        "engine_started_ms": status.started_ms,
        "evidence_count": EvidenceRecord.objects.count(),
    }
    snapshot = SnapshotRecord.objects.filter(id=1).first()
    if snapshot is not None:
        info["snapshot_apex"] = snapshot.apex
        info["snapshot_state_hash"] = bytes(snapshot.state_hash).hex()
    settings = _latest_settings()
    if settings is not None:
        info.update(settings_json(settings))
    return JsonResponse(info)


def _envelope_from_body(request: HttpRequest) -> bytes:
    if request.content_type == "application/json":
        try:
            return base64.b64decode(json.loads(request.body)["envelope"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            raise ValueError(f"expected JSON {{'envelope': base64}}: {error}") from None
    return bytes(request.body)


@csrf_exempt
@require_POST
async def constellation_init(request: HttpRequest) -> HttpResponse:
    """Hands a signed ConstellationUpdate to the engine and returns its verdict."""
    try:
        envelope = await sync_to_async(_envelope_from_body)(request)
    except ValueError as error:
        return JsonResponse({"status": 400, "description": str(error)}, status=400)
    answer = await engine_ask("quanta.init", envelope, INIT_TIMEOUT_S)
    if answer is None:
        return JsonResponse({"status": 500, "description": "the engine did not answer"}, status=504)
    http_status = 200 if answer["status"] == 200 else 400
    return JsonResponse(answer, status=http_status)


@csrf_exempt
@require_POST
async def constellation_update(request: HttpRequest) -> HttpResponse:
    """Hands a later ConstellationUpdate, signed by a majority of the auditors in force, to
    the engine and returns its verdict (the apex of the settings quantum on success)."""
    try:
        envelope = await sync_to_async(_envelope_from_body)(request)
    except ValueError as error:
        return JsonResponse({"status": 400, "description": str(error)}, status=400)
    answer = await engine_settings_update(envelope)
    http_status = {200: 200, 504: 504}.get(int(answer["status"]), 400)
    return JsonResponse(answer, status=http_status)
