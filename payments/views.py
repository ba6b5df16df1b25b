"""The demo faucet endpoint and the proof of reserves (`GET /api/constellation/reserves`).

The faucet funds an account from the local ledger (demo mode only).

`POST /api/faucet` with JSON {"public_key": "G...", "asset": "USD", "amount": "100"} mints the
amount on the local ledger to the key and pays it into the vault of the constellation's local
provider (`faucet_deposit`, as the `faucet` command does); the deposit then reaches the account
as a quantum notification. Outside demo mode the endpoint does not exist (404).

A deposit that cannot register the key is refused up front (400, nothing paid): while the key
has no account, only the quote asset of at least `min_account_balance` registers it, and the
engine keeps any other deposit to an unknown key in the vault without crediting it (the
Centaurus rule, quanta/core/processors/deposit.py). A key counts as registered once it has an
account row, or once the ledger shows its own registering payment into the vault: account
rows are snapshot rows (up to a snapshot interval behind), and a trader who funds USD and then
XLM a second later must not be refused.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from exchange.selectors import account_id_for_key
from payments.models import LedgerTransfer
from payments.providers.local_ledger.ledger import APPLIED, faucet_deposit
from payments.reserves import reserves_report
from quanta.core.keys import InvalidKey, decode_public_key
from quanta.core.xdr.schema import ConstellationSettings, ProviderSettings
from quanta.selectors import settings_current

LOCAL_PROVIDER_TYPE = "local"
UNITS_PER_WHOLE = 10_000_000
# A faucet is for trying things out: one call cannot mint more than this many whole units.
FAUCET_WHOLE_MAX = 1_000_000


class FaucetError(ValueError):
    """A faucet request that cannot be served, with the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        """Stores the human-readable message and the HTTP status."""
        super().__init__(message)
        self.status = status


def _current_settings() -> ConstellationSettings:
    """Returns the settings in force; 409 before initialization."""
    current = settings_current()
    if current is None:
        raise FaucetError("the constellation is not initialized yet", 409)
    return current


def _local_provider(current: ConstellationSettings) -> ProviderSettings:
    """Returns the local-ledger provider of the current constellation settings."""
    for provider in current.providers:
        if provider.provider_type == LOCAL_PROVIDER_TYPE:
            return provider
    raise FaucetError("this constellation has no local-ledger provider", 409)


def _units(text: object) -> int:
    """Returns a positive decimal amount (at most 7 decimals) in 10^-7 units."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise FaucetError(f"amount {text!r} is not a number") from None
    units = value * UNITS_PER_WHOLE
    if not value.is_finite() or units != units.to_integral_value() or units <= 0:
        raise FaucetError("the amount must be positive with at most 7 decimals")
    if value > FAUCET_WHOLE_MAX:
        raise FaucetError(f"the faucet gives at most {FAUCET_WHOLE_MAX} per request")
    return int(units)


def _whole(units: int) -> str:
    """Returns 10^-7 units as decimal text without trailing zeros."""
    return format(Decimal(units) / UNITS_PER_WHOLE, "f").rstrip("0").rstrip(".") or "0"


def _registering_payment_made(
    provider: ProviderSettings, public_key: str, quote: str, minimum: int
) -> bool:
    """Tells whether the key already paid the vault a deposit that registers it."""
    tokens = [item.token for item in provider.assets if item.asset == quote]
    return LedgerTransfer.objects.filter(
        source=public_key,
        destination=provider.vault,
        asset__in=tokens,
        amount__gte=minimum,
        status=APPLIED,
    ).exists()


def _check_registers(
    current: ConstellationSettings,
    provider: ProviderSettings,
    public_key: str,
    asset: str,
    units: int,
) -> None:
    """Refuses a first deposit the engine would keep in the vault without crediting it."""
    quote = next(item.code for item in current.assets if item.is_quote_asset)
    minimum = current.min_account_balance
    if asset == quote and units >= minimum:
        return
    if account_id_for_key(decode_public_key(public_key)) != 0:
        return
    if _registering_payment_made(provider, public_key, quote, minimum):
        return
    raise FaucetError(
        f"this key has no account yet: its first deposit must be at least {_whole(minimum)} "
        f"{quote} (the quote asset), which registers it; {asset} can follow once it is "
        "registered (anything else sent to an unregistered key stays in the vault, "
        "never credited)"
    )


def _faucet(body: dict[str, object]) -> dict[str, object]:
    """Validates one faucet request and pays it into the vault; returns the JSON answer."""
    public_key = str(body.get("public_key", ""))
    try:
        decode_public_key(public_key)
    except InvalidKey as error:
        raise FaucetError(f"invalid public key: {error}") from None
    asset = str(body.get("asset", ""))
    units = _units(body.get("amount", ""))
    current = _current_settings()
    provider = _local_provider(current)
    tokens = {item.asset: item.token for item in provider.assets}
    if asset not in tokens:
        raise FaucetError(f"the local provider does not carry {asset!r}")
    _check_registers(current, provider, public_key, asset, units)
    try:
        transfer_id = faucet_deposit(public_key, provider.vault, tokens[asset], units)
    except ValueError as error:  # The ledger refused the transfer (e.g. an unknown token).
        raise FaucetError(f"the ledger refused the transfer: {error}") from None
    return {"status": 200, "transfer": transfer_id, "asset": asset, "amount": units}


def _any_origin(response: HttpResponse) -> HttpResponse:
    """Lets a page served by another node of the constellation read `response`: the live page
    follows an alpha replacement and then talks to the new alpha (docs/frontend.md)."""
    response["Access-Control-Allow-Origin"] = "*"
    return response


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def faucet(request: HttpRequest) -> HttpResponse:
    """Funds an account from the local ledger faucet (demo mode only). Any origin may call it
    (demo money, no cookies): OPTIONS answers the browser's preflight of a JSON POST."""
    if not settings.DEMO_MODE:
        raise Http404("the faucet exists only in demo mode")
    if request.method == "OPTIONS":
        preflight = HttpResponse(status=204)
        preflight["Access-Control-Allow-Methods"] = "POST"
        preflight["Access-Control-Allow-Headers"] = "Content-Type"
        return _any_origin(preflight)
    try:
        body = json.loads(request.body)
        if not isinstance(body, dict):
            raise FaucetError("expected a JSON object")
        return _any_origin(JsonResponse(_faucet(body)))
    except json.JSONDecodeError:
        return _any_origin(
            JsonResponse({"status": 400, "description": "expected JSON"}, status=400)
        )
    except FaucetError as error:
        return _any_origin(
            JsonResponse({"status": error.status, "description": str(error)}, status=error.status)
        )


@require_GET
def reserves(request: HttpRequest) -> JsonResponse:
    """Returns the proof of reserves at the last persisted (finalized) apex: per asset the
    vaults against the liabilities, and that apex's state hash (`payments.reserves`); 409
    before the first snapshot."""
    report = reserves_report()
    if report is None:
        return _any_origin(
            JsonResponse({"status": 409, "description": "no finalized snapshot yet"}, status=409)
        )
    return _any_origin(JsonResponse(report.to_json()))
