"""Builds, signs and posts the first ConstellationUpdate (initialization).

Settings come from a JSON file (the format of /api/constellation/info, see
`quanta/core/settings_json.py`) or from arguments. Signatures come from secrets given here
(`--sign S...`) or from auditors who signed elsewhere (`--signature G...:<base64>`, printed by
this command with `--sign S... --signature-only`). The result is posted to a node's
`/api/constellation/init`, or written out with `--output`.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings as django_settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from quanta.core.keys import InvalidKey, KeyPair
from quanta.core.settings_json import SettingsFormatError, settings_from_json
from quanta.core.settings_update import (
    first_update_check,
    signature_from_text,
    signature_to_text,
    update_envelope,
    update_sign,
)
from quanta.core.signatures import constellation_id_of, update_bytes, update_digest
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import ConstellationSettings, ConstellationUpdate

POST_TIMEOUT_S = 40


DEFAULT_MINUTE_LIMIT = 1_200
DEFAULT_HOUR_LIMIT = 36_000


class Command(BaseCommand):
    help = "Build, sign and post the first constellation settings (ConstellationUpdate)."

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_argument_group("settings (a JSON file, or arguments)")
        source.add_argument("--settings-file", type=Path, help="JSON file with the settings")
        source.add_argument("--auditor", action="append", default=[], metavar="G...=ADDRESS")
        source.add_argument("--alpha", help="alpha's G... key (default: the first auditor)")
        source.add_argument("--quote-asset", default="USD")
        source.add_argument("--asset", action="append", default=[], metavar="CODE")
        source.add_argument("--min-account-balance", type=int, default=10_000_000)
        source.add_argument("--min-lot-size", type=int, default=1_000)
        # Requests per account: unlimited (0) let one account take the sequential engine for
        # itself. 1 200 a minute and 36 000 an hour serve an active trading bot; raise them
        # for market makers (0 = unlimited, both must be set for a limit to apply).
        source.add_argument("--minute-limit", type=int, default=DEFAULT_MINUTE_LIMIT)
        source.add_argument("--hour-limit", type=int, default=DEFAULT_HOUR_LIMIT)
        source.add_argument("--provider", action="append", default=[], metavar="TYPE:NAME:VAULT")
        signing = parser.add_argument_group("signatures")
        signing.add_argument("--sign", action="append", default=[], metavar="S...")
        signing.add_argument(
            "--sign-file",
            action="append",
            default=[],
            metavar="FILE",
            help="sign with the S... key in FILE (keeps the secret off the command line)",
        )
        signing.add_argument("--signature", action="append", default=[], metavar="G...:B64")
        signing.add_argument("--message-id", type=int, default=1)
        out = parser.add_mutually_exclusive_group()
        out.add_argument("--digest", action="store_true", help="print what to sign and stop")
        out.add_argument("--signature-only", action="store_true", help="print signatures, stop")
        out.add_argument("--output", type=Path, help="write the signed envelope (base64) here")
        out.add_argument("--node", help="node URL to post to (default: this node)")

    def handle(self, *args: Any, **options: Any) -> None:
        update = ConstellationUpdate(options["message_id"], _settings(options))
        if options["digest"]:
            constellation = constellation_id_of(update.settings)
            self.stdout.write(f"constellation id: {constellation.hex()}")
            self.stdout.write(f"sha256 to sign: {update_digest(constellation, update).hex()}")
            self.stdout.write(f"bytes (base64): {base64.b64encode(update_bytes(update)).decode()}")
            return
        secrets = [*options["sign"], *(_secret_from_file(f) for f in options["sign_file"])]
        signatures = [update_sign(update, _keypair(secret), None) for secret in secrets]
        if options["signature_only"]:
            self.stdout.write("\n".join(signature_to_text(s) for s in signatures))
            return
        try:
            signatures += [signature_from_text(text) for text in options["signature"]]
            envelope = update_envelope(update, signatures)
            first_update_check(envelope)
        except ValueError as error:
            raise CommandError(f"refused: {error}") from None
        encoded = base64.b64encode(encode(envelope)).decode()
        if options["output"]:
            options["output"].write_text(encoded + "\n")
            self.stdout.write(f"signed update written to {options['output']}")
            return
        node = options["node"] or f"http://127.0.0.1:{django_settings.HTTP_PORT}"
        self.stdout.write(json.dumps(_post(f"{node.rstrip('/')}/api/constellation/init", encoded)))


def _settings(options: dict[str, Any]) -> ConstellationSettings:
    try:
        if options["settings_file"]:
            data = json.loads(options["settings_file"].read_text())
        else:
            data = _settings_data(options)
        return settings_from_json(data)
    except (OSError, json.JSONDecodeError, SettingsFormatError) as error:
        raise CommandError(f"bad settings: {error}") from None


def _settings_data(options: dict[str, Any]) -> dict[str, object]:
    """Builds the settings JSON from the arguments."""
    if not options["auditor"]:
        raise CommandError("give --settings-file FILE or at least one --auditor G...=ADDRESS")
    auditors = []
    for text in options["auditor"]:
        public_key, _, address = text.partition("=")
        auditors.append({"public_key": public_key, "address": address})
    quote = options["quote_asset"]
    codes = [quote, *[code for code in options["asset"] if code != quote]]
    providers = []
    for text in options["provider"] or ["local:vault:VAULT"]:
        kind, name, vault = (text.split(":", 2) + ["", ""])[:3]
        assets = [{"token": code, "asset": code} for code in codes]
        providers.append({"type": kind, "name": name, "vault": vault, "assets": assets})
    return {
        "alpha": options["alpha"] or auditors[0]["public_key"],
        "auditors": auditors,
        "assets": [{"code": code, "is_quote_asset": code == quote} for code in codes],
        "min_account_balance": options["min_account_balance"],
        "min_allowed_lot_size": options["min_lot_size"],
        "providers": providers,
        "request_rate_limits": {
            "minute_limit": options["minute_limit"],
            "hour_limit": options["hour_limit"],
        },
    }


def _keypair(secret: str) -> KeyPair:
    try:
        return KeyPair.from_secret(secret)
    except InvalidKey as error:
        raise CommandError(f"bad secret: {error}") from None


def _post(url: str, encoded: str) -> dict[str, object]:
    body = json.dumps({"envelope": encoded}).encode()
    request = urllib.request.Request(  # noqa: S310 - the operator names the node URL
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=POST_TIMEOUT_S) as response:  # noqa: S310
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        raise CommandError(f"the node refused: {error.read().decode(errors='replace')}") from None
    except (urllib.error.URLError, TimeoutError) as error:
        raise CommandError(f"could not reach {url}: {error}") from None


def _secret_from_file(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error}") from None
