"""HTTP endpoints of a node: public constellation info, initialization and settings updates.

What the web process can refuse it refuses itself, so a request the engine would refuse costs
the sequential engine nothing: `init` on an initialized node is 409 at once (it used to make
the engine cut a snapshot with a full state hash), without the node's one-time token 401
(wrong: 403, `quanta.init_token`), and a genesis alpha would refuse (not naming this node as
alpha, not signed by it, no majority: `quanta.core.genesis`) 403/400; an `update` is
checked against the settings in force (version, rules, and the signatures, verified here, in
parallel with the engine) before the engine sees it, and bodies come only as JSON or raw XDR
(`application/json` or `application/octet-stream`, else 415): a page of another site can post
neither without CORS consent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from quanta.core.alpha import UPDATE_CANNOT_FINALIZE
from quanta.core.alpha_replacement import alpha_address
from quanta.core.config import Config
from quanta.core.genesis import alpha_genesis_check
from quanta.core.processors.settings import check_update
from quanta.core.settings_json import settings_to_json
from quanta.core.settings_update import first_update_check
from quanta.core.status import ConstellationError
from quanta.core.xdr.codec import XdrError, decode
from quanta.core.xdr.schema import (
    ConstellationMessageEnvelope,
    ConstellationUpdate,
)
from quanta.engine_client import engine_ask
from quanta.herald_admission import proposed_keys_publish, settings_in_force
from quanta.init_token import init_token_refusal, presented_token
from quanta.models import EvidenceRecord, FeeBalanceRecord, SnapshotRecord
from quanta.node_identity import genesis_pin, node_keypair
from quanta.node_status import status_read
from quanta.selectors import constellation_id, settings_chain_after, settings_current
from quanta.settings_drafts import engine_settings_update

INIT_TIMEOUT_S = 30.0


# The one JSON form of the settings (shared with `init_constellation --settings-file`).
settings_json = settings_to_json


@require_GET
def constellation_info(request: HttpRequest) -> JsonResponse:
    """Returns the node's state and apex, how many evidence records it keeps, its snapshot
    (apex, state hash, the fee account) and the constellation's public settings."""
    status = status_read()
    info: dict[str, object] = {
        "state": status.state,
        "apex": status.apex,
        "reason": status.reason,
        "engine_started_ms": status.started_ms,
        "evidence_count": EvidenceRecord.objects.count(),
        "vault_mismatches": status.vaults,
    }
    snapshot = SnapshotRecord.objects.filter(id=1).first()
    if snapshot is not None:
        info["snapshot_apex"] = snapshot.apex
        info["snapshot_state_hash"] = bytes(snapshot.state_hash).hex()
        # The constellation's fee account at that snapshot (decimal strings of 10^-7 units).
        info["fee_account"] = {r.asset: str(r.amount) for r in FeeBalanceRecord.objects.all()}
    settings = settings_current()
    if settings is not None:
        info.update(settings_json(settings))
        # Who alpha is and where, as the settings this node holds say (a client checks them
        # against the majority-signed chain: `ConstellationClient.connect_to_alpha`).
        info["alpha_address"] = alpha_address(settings)
    found = constellation_id()
    info["constellation_id"] = None if found is None else found.hex()
    response = JsonResponse(info)
    # Public: the page of another node reads it once it follows an alpha replacement.
    response["Access-Control-Allow-Origin"] = "*"
    return response


CHAIN_PAGE = 64
"""Settings updates per page of the chain: a client pages with `after`."""


@require_GET
def settings_chain(request: HttpRequest) -> JsonResponse:
    """Returns the signed settings updates above version `after` (default 0), CHAIN_PAGE at
    most, for a client to verify forward from its pinned constellation id: this node's word
    is never needed, each update carries the signatures of the auditors before it."""
    try:
        after = int(request.GET.get("after", "0"))
    except ValueError:
        after = -1
    if not 0 <= after < 2**64:
        return _refused(400, "after: a settings version (an integer from 0)")
    links = settings_chain_after(after, CHAIN_PAGE + 1)
    found = constellation_id()
    response = JsonResponse(
        {
            "constellation_id": None if found is None else found.hex(),
            "updates": [
                {
                    "version": link.version,
                    "apex": link.apex,
                    "envelope": base64.b64encode(link.envelope).decode(),
                }
                for link in links[:CHAIN_PAGE]
            ],
            "more": len(links) > CHAIN_PAGE,
        }
    )
    # Public and signed: a page served by another node of the constellation may read it (the
    # live page follows an alpha replacement through the nodes its verified settings name).
    response["Access-Control-Allow-Origin"] = "*"
    return response


BODY_TYPES = ("application/json", "application/octet-stream")


class UnsupportedBodyError(ValueError):
    """A body of another content type than BODY_TYPES (answered 415)."""


def _envelope_from_body(request: HttpRequest) -> bytes:
    if request.content_type == "application/json":
        try:
            return base64.b64decode(json.loads(request.body)["envelope"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            raise ValueError(f"expected JSON {{'envelope': base64}}: {error}") from None
    if request.content_type != "application/octet-stream":
        raise UnsupportedBodyError(f"the body must be one of {', '.join(BODY_TYPES)}")
    return bytes(request.body)


UPDATE_RETRY_S = 0.5


async def _update_once_its_auditors_are_there(envelope: bytes) -> dict[str, Any]:
    """Admits the update's auditors at the herald, then asks the engine until they are there
    to finalize it (the engine refuses it, unblocked, until then) or the setting
    UPDATE_AUDITORS_WAIT_S passed; returns the engine's last answer."""
    settings = decode(ConstellationMessageEnvelope, envelope).message
    if isinstance(settings, ConstellationUpdate):
        await sync_to_async(proposed_keys_publish)(settings.settings)
    deadline = time.monotonic() + django_settings.UPDATE_AUDITORS_WAIT_S
    while True:
        answer = await engine_settings_update(envelope)
        waiting = str(answer.get("description", "")).startswith(UPDATE_CANNOT_FINALIZE)
        if not waiting or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(UPDATE_RETRY_S)  # a bounded retry: the auditors must connect


def _refused(status: int, text: str) -> JsonResponse:
    return JsonResponse({"status": status, "description": text}, status=status)


def _update_precheck(envelope: bytes) -> JsonResponse | None:
    """Returns the answer to an update the engine would refuse against the settings in force
    (malformed, wrong version, breaking a rule, too few valid signatures), else None."""
    current = settings_in_force()
    if current is None:
        return _refused(450, "the constellation is not initialized: use initialization")
    try:
        signed = decode(ConstellationMessageEnvelope, envelope)
        check_update(signed, Config.from_settings(current, constellation_id()))
    except XdrError as error:
        return _refused(400, f"malformed update: {error}")
    except ConstellationError as error:
        return _refused(int(error.status), str(error))
    return None


def _init_precheck(request: HttpRequest, envelope: bytes) -> JsonResponse | None:
    """Returns the answer to an init the engine must not see (already initialized: 409; no or
    a wrong one-time token: 401/403; a genesis alpha would refuse: 400/403), else None."""
    if settings_current() is not None:
        return _refused(409, "the constellation is already initialized")
    if django_settings.NODE_ROLE != "alpha":  # An auditor's engine never sets a token.
        return _refused(450, "this node is an auditor: initialize through alpha")
    token_refusal = init_token_refusal(presented_token(request))
    if token_refusal is not None:
        return _refused(*token_refusal)
    try:
        signed = decode(ConstellationMessageEnvelope, envelope)
        first_update_check(signed)
        alpha_genesis_check(signed, node_keypair().public_key, genesis_pin())
    except XdrError as error:
        return _refused(400, f"malformed settings: {error}")
    except ValueError as error:
        return _refused(400, str(error))
    except ConstellationError as error:
        return _refused(int(error.status), str(error))
    except RuntimeError as error:  # No node key, or a malformed pin: the node's setup.
        return _refused(500, str(error))
    return None


@csrf_exempt
@require_POST
async def constellation_init(request: HttpRequest) -> HttpResponse:
    """Hands the genesis (a signed ConstellationUpdate) to the engine and returns its verdict,
    once the web process checked what it can (`_init_precheck`): whoever cannot initialize
    this node (no token, settings alpha did not sign) costs the sequential engine nothing."""
    try:
        envelope = await sync_to_async(_envelope_from_body)(request)
    except UnsupportedBodyError as error:
        return _refused(415, str(error))
    except ValueError as error:
        return _refused(400, str(error))
    refused = await sync_to_async(_init_precheck)(request, envelope)
    if refused is not None:
        return refused
    answer = await engine_ask("quanta.init", envelope, INIT_TIMEOUT_S)
    if answer is None:
        return JsonResponse({"status": 500, "description": "the engine did not answer"}, status=504)
    http_status = {200: 200, 403: 403}.get(int(answer["status"]), 400)
    return JsonResponse(answer, status=http_status)


@csrf_exempt
@require_POST
async def constellation_update(request: HttpRequest) -> HttpResponse:
    """Hands a later ConstellationUpdate, signed by a majority of the auditors in force, to
    the engine and returns its verdict (the apex of the settings quantum on success)."""
    try:
        envelope = await sync_to_async(_envelope_from_body)(request)
    except UnsupportedBodyError as error:
        return _refused(415, str(error))
    except ValueError as error:
        return _refused(400, str(error))
    refused = await sync_to_async(_update_precheck)(envelope)
    if refused is not None:
        return refused
    answer = await _update_once_its_auditors_are_there(envelope)
    http_status = {200: 200, 504: 504}.get(int(answer["status"]), 400)
    return JsonResponse(answer, status=http_status)
