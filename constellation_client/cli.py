"""Command-line client: `python -m constellation_client --node URL --secret S... COMMAND`.

Commands: keygen, info, audit, balance, pay, order, cancel, cancel-all, batch, withdraw,
history, and (no quantum signed) faucet, nodes, depth, trades, ticker, watch (the order
commands and their outcome reports: `constellation_client.order_commands`; `audit`:
`constellation_client.audit`). Amounts are decimal text converted exactly to 10^-7 units and
printed as decimals again; asset codes are case-insensitive; the secret may come from
`CONSTELLATION_SECRET`. Quantum commands wait for finality (`--no-wait` to skip) and print
"acknowledged", what each order did (filled / partly filled / nothing filled, fills, rest)
and then "finalized (k of n signatures verified, m needed)"; `--json` prints one JSON object
on stdout instead, errors included (`{"error": "...", "exit_code": N}`).

Trust: the CLI verifies everything against a pinned constellation id (64 hex characters, the
hash of the genesis settings, obtained out of band): `--constellation HEX`, else the
`CONSTELLATION_ID` environment variable, else `constellation_id = "HEX"` in the config file
(`--config PATH`, `CONSTELLATION_CONFIG`, default ~/.config/constellation/client.toml).
Without a pin, node commands refuse to run unless `--trust-on-first-use` is given, which pins
what the node's genesis hashes to and prints it. Balances are alpha's word only
("alpha-attested"): they lie outside every majority-signed proof.

Exit codes: 0 done (final, or acknowledged with --no-wait), 1 rejected by the node (`audit`:
a vault short of its liabilities or unreadable), 2 usage
error (no pin included), 3 accepted but not final in time, 4 transport or protocol failure
(a settings chain that does not verify from the pin included), 5 outcome unknown: no verified
answer arrived, so the request may or may not have been executed (check `balance` or
`history` before retrying).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import enum
import json
import os
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from constellation_client import verbs
from constellation_client.amounts import AmountError, format_amount, parse_amount
from constellation_client.audit import audit_covered, audit_lines, fetch_reserves
from constellation_client.chain import fetch_verified_head, genesis_id
from constellation_client.client import ConstellationClient
from constellation_client.counterparty import item_counterparty
from constellation_client.describe import effects_sentences, price_text, time_text
from constellation_client.digests import ConstellationIdError, parse_constellation_id
from constellation_client.messages import humanize
from constellation_client.order_commands import (
    ORDER_COMMANDS,
    add_order_commands,
    order_json,
    order_lines,
    send_order_command,
)
from constellation_client.result import FINALITY_TIMEOUT_S, RequestResult
from constellation_client.verify import verify_history_item
from constellation_client.wire import (
    Constellation,
    ConstellationClientError,
    UnverifiedOutcomeError,
    fetch_info,
    node_urls,
)
from exchange.core.orderbook import Side
from quanta.core.keys import InvalidKey, KeyPair, decode_public_key, encode_public_key
from quanta.core.signatures import majority
from quanta.core.xdr.schema import AccountDataInfo, QuantumInfoResponse, QueryOrder

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_NOT_FINAL = 3
EXIT_FAILURE = 4
EXIT_UNVERIFIED = 5
DEFAULT_NODE = "http://127.0.0.1:8000"
SECRET_ENV = "CONSTELLATION_SECRET"  # noqa: S105 (the variable's name, not a secret)
NODE_ENV = "CONSTELLATION_NODE"
ID_ENV = "CONSTELLATION_ID"
CONFIG_ENV = "CONSTELLATION_CONFIG"
DEFAULT_CONFIG = Path("~/.config/constellation/client.toml")
NO_PIN_TEXT = (
    "no constellation id pinned, so nothing the node says can be trusted: pass "
    f'--constellation HEX, set {ID_ENV}, or put constellation_id = "HEX" in '
    f"{DEFAULT_CONFIG} (or --config PATH); get the id out of band from the constellation's "
    "operators (or use --trust-on-first-use to pin what this node claims)"
)


# --- arguments ---------------------------------------------------------------------------


class CliParser(argparse.ArgumentParser):
    """An argument parser whose usage errors honour --json: one JSON object on stdout."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        """Prints the usage error (JSON with --json) and exits with EXIT_USAGE."""
        if CliParser.json_errors:
            print(json.dumps({"error": message, "exit_code": EXIT_USAGE}, sort_keys=True))
            sys.exit(EXIT_USAGE)
        super().error(message)


def _public_key(text: str) -> str:
    """Checks a G... public key argument (argparse type): a typo is a usage error."""
    try:
        decode_public_key(text)
    except InvalidKey as error:
        raise argparse.ArgumentTypeError(f"not a public key (G...): {error}") from None
    return text


def _amount(text: str) -> int:
    """Parses an amount argument exactly (argparse type)."""
    try:
        return parse_amount(text)
    except AmountError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_quantum_commands(commands: Any) -> None:
    """Declares the commands that send quantum requests."""
    commands.add_parser("balance", help="show balances and open orders")
    pay = commands.add_parser("pay", help="pay another account")
    pay.add_argument("destination", type=_public_key, help="G... public key")
    pay.add_argument("asset")
    pay.add_argument("amount", type=_amount)
    add_order_commands(commands)
    withdraw = commands.add_parser("withdraw", help="withdraw through a payment provider")
    withdraw.add_argument("provider", help="provider id, e.g. local-vault")
    withdraw.add_argument("asset")
    withdraw.add_argument("amount", type=_amount)
    withdraw.add_argument("destination", help="external address")
    withdraw.add_argument("--fee", type=_amount, default=0)


def _add_read_commands(commands: Any) -> None:
    """Declares the commands that sign no quantum: the demo faucet and the public reads."""
    faucet = commands.add_parser("faucet", help="demo mode: fund a key from the local faucet")
    faucet.add_argument("asset")
    faucet.add_argument("amount", type=_amount)
    faucet.add_argument("--to", type=_public_key, help="G... key to fund (default: --secret's)")
    commands.add_parser("nodes", help="every node's state and apex, laggards marked")
    for verb, text in (
        ("depth", "the order book with cumulative amounts"),
        ("trades", "the latest trades, newest first"),
        ("ticker", "last price, spread, 24 h change/high/low/volume"),
    ):
        commands.add_parser(verb, help=text).add_argument("market", help="asset, e.g. XLM")
    watch = commands.add_parser("watch", help="stream the account's fills and notifications")
    watch.add_argument("--count", type=int, default=0, help="stop after N (0: never)")
    watch.add_argument(
        "--for", dest="seconds", type=float, default=None, help="stop after S s idle"
    )


def build_parser() -> argparse.ArgumentParser:
    """Returns the argument parser of the CLI."""
    parser = CliParser(prog="constellation_client", description=__doc__)
    parser.add_argument("--node", default=os.environ.get(NODE_ENV, DEFAULT_NODE))
    parser.add_argument("--secret", default=os.environ.get(SECRET_ENV), help="S... secret")
    parser.add_argument(
        "--secret-file",
        default=os.environ.get(f"{SECRET_ENV}_FILE"),
        help=f"a file holding the S... secret (or {SECRET_ENV}_FILE): not shown by ps",
    )
    parser.add_argument(
        "--constellation",
        metavar="HEX",
        help=f"pinned constellation id (64 hex characters; else {ID_ENV}, else the config file)",
    )
    parser.add_argument(
        "--config",
        default=os.environ.get(CONFIG_ENV),
        help=f'TOML file with constellation_id = "HEX" (or {CONFIG_ENV}; default {DEFAULT_CONFIG})',
    )
    parser.add_argument(
        "--trust-on-first-use",
        action="store_true",
        help="without a pin, trust the constellation this node's genesis names (printed)",
    )
    parser.add_argument(
        "--follow-alpha",
        action="store_true",
        help="connect to the alpha the verified settings name, asking the --node nodes "
        "(comma-separated) where it is, and again after a connection loss or a 'replaced' "
        "answer: follows an alpha replacement",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for finality")
    parser.add_argument("--timeout", type=float, default=10.0, help="connection timeout (s)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("keygen", help="create a key pair (no node needed)")
    commands.add_parser("info", help="show the constellation's public info")
    commands.add_parser(
        "audit", help="show the node's proof of reserves: vaults against liabilities"
    )
    _add_quantum_commands(commands)
    history = commands.add_parser("history", help="list the account's final quanta")
    history.add_argument("--cursor", type=int, default=0)
    history.add_argument("--desc", action="store_true", help="newest first (the default)")
    history.add_argument("--oldest-first", action="store_true", help="oldest first")
    history.add_argument("--limit", type=int, default=50)
    _add_read_commands(commands)
    return parser


# --- output ------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Returns `value` as JSON-ready data: dataclasses as objects (with their type), bytes
    as hex, enums by name."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"type": type(value).__name__, **fields}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple | list):
        return [jsonable(item) for item in value]
    return value


AMOUNT_FIELDS = frozenset({"amount", "liabilities", "quote_amount", "asset_amount", "fee"})
PRICE_FIELDS = frozenset({"price"})


def human_json(value: Any) -> Any:
    """Returns `jsonable(value)` with amounts and prices as decimal strings ("12.5", "0.125"):
    --json speaks the same units as the text output (the raw integers are the wire's)."""
    if isinstance(value, dict):
        return {key: _human_field(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [human_json(item) for item in value]
    return value


def _human_field(key: str, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if key in AMOUNT_FIELDS:
            return format_amount(value)
        if key in PRICE_FIELDS:
            return price_text(value)
    return human_json(value)


def _emit(as_json: bool, data: dict[str, Any], lines: Sequence[str]) -> None:
    """Prints JSON or human lines."""
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        for line in lines:
            print(line)


def _finality_line(result: RequestResult) -> str:
    """Returns the human summary of a result's signatures, with the threshold: "2 of 3" alone
    reads as if an auditor had failed."""
    needed = majority(result.auditor_count) if result.auditor_count else 0
    counts = (
        f"{result.signatures_verified} of {result.auditor_count} signatures verified, "
        f"{needed} needed"
    )
    if result.finalized:
        return f"finalized ({counts})"
    return (
        f"WARNING: acknowledged by alpha but not final within {FINALITY_TIMEOUT_S:g} s "
        f"({counts}); check `history` before relying on it"
    )


def _result_json(result: RequestResult, quote: str = "") -> dict[str, Any]:
    """Returns the JSON view of a request result."""
    effects = result.effects.effects if result.effects is not None else ()
    return {
        "status": int(result.status),
        "status_name": result.status.name,
        "description": humanize(result.description),
        "node_description": result.description,
        "events": effects_sentences(effects, quote) if result.ok else [],
        "apex": result.apex,
        "quantum_hash": result.quantum_hash.hex(),
        "nonce": result.nonce,
        "acknowledged": result.acknowledged,
        "finalized": result.finalized,
        "attested_by": result.attested_by,
        "account_data_attested_by": result.account_data_attested_by,
        "signatures_verified": result.signatures_verified,
        "auditor_count": result.auditor_count,
        "effects": human_json(jsonable(result.effects)),
        "account_data": human_json(jsonable(result.account_data)),
    }


def _account_lines(data: AccountDataInfo) -> list[str]:
    """Returns human lines describing balances and open orders."""
    lines = [f"account {data.account_id} (alpha-attested)"]
    for balance in data.balances:
        amount, locked = format_amount(balance.amount), format_amount(balance.liabilities)
        free = format_amount(balance.amount - balance.liabilities)
        lines.append(f"  {balance.asset}: {amount} (locked {locked}, available {free})")
    for order in data.orders:
        side = Side(order.side).name.lower()
        price = price_text(order.price)
        label = f" (client id {order.client_order_id})" if order.client_order_id else ""
        lines.append(
            f"  order {order.order_id}{label}: {side} {format_amount(order.amount)} "
            f"{order.asset} at {price}"
        )
    return lines


def _report(result: RequestResult, as_json: bool, waited: bool, quote: str = "") -> int:
    """Prints a quantum result and returns the exit code."""
    lines: list[str]
    if not result.ok:
        status = f"{int(result.status)} {result.status.name} {humanize(result.description)}"
        lines = [f"rejected by alpha (alpha-signed): {status}"]
        _emit(as_json, _result_json(result, quote), lines)
        return EXIT_REJECTED
    lines = [f"acknowledged (apex {result.apex}, nonce {result.nonce} proven applied)"]
    # What each order did (filled, resting, cancelled), then every effect in words (the
    # price it rests at, the balances moved).
    lines += order_lines(result, quote or None)
    if result.effects is not None and result.account_data is None:
        lines += [f"  {event}" for event in effects_sentences(result.effects.effects, quote)]
    if result.account_data is not None:
        lines += _account_lines(result.account_data)
    if waited:
        lines.append(_finality_line(result))
    _emit(as_json, {**_result_json(result, quote), **order_json(result)}, lines)
    return EXIT_OK if result.finalized or not waited else EXIT_NOT_FINAL


def _history_report(
    page: QuantumInfoResponse, client: ConstellationClient, as_json: bool, quote: str
) -> int:
    """Prints a history page in a trader's words, with the signatures verified per quantum
    and the counterparty its verified quantum names (none for a quantum that is not final)."""
    items, lines = [], []
    for item in page.items:
        final, count = verify_history_item(item, client.constellation)
        events = effects_sentences(item.effects.effects, quote)
        other = item_counterparty(item, client.keypair.public_key) if final else None
        proof = "final" if final else "NOT final"
        lines.append(f"{time_text(item.timestamp)}  apex {item.apex} ({proof}, {count} signatures)")
        lines += [f"    {event}" for event in events]
        if other is not None:
            lines.append(f"    counterparty: {other.text}")
        items.append(
            {
                **human_json(jsonable(item)),
                "time": time_text(item.timestamp),
                "events": events,
                "final": final,
                "signatures_verified": count,
                "counterparty": None if other is None else dataclasses.asdict(other),
            }
        )
    if not page.items:
        lines.append("no final quanta on this page")
    if page.next_cursor:
        lines.append(f"more: --cursor {page.next_cursor} (same order)")
    data = {"items": items, "next_cursor": page.next_cursor, "prev_cursor": page.prev_cursor}
    _emit(as_json, data, lines)
    return EXIT_OK


# --- commands ----------------------------------------------------------------------------


def _keygen(args: argparse.Namespace) -> int:
    """Prints a fresh key pair."""
    keypair = KeyPair.random()
    data = {"secret": keypair.secret, "public_key": keypair.public_key_strkey}
    _emit(args.json, data, [f"secret: {keypair.secret}", f"public: {keypair.public_key_strkey}"])
    return EXIT_OK


def _config_pin(path_text: str | None) -> tuple[str, str] | None:
    """Returns (the config file's constellation_id, where it came from), or None if the file
    (the default one, when none is named) does not exist or names none."""
    path = Path(path_text or DEFAULT_CONFIG).expanduser()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        if path_text:
            raise ConstellationClientError(f"config file {path} not found") from None
        return None
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConstellationClientError(f"cannot read config file {path}: {error}") from None
    value = data.get("constellation_id")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConstellationClientError(f"{path}: constellation_id must be a hex string")
    return value, str(path)


def pinned_id(args: argparse.Namespace) -> bytes | None:
    """Returns the pinned constellation id: --constellation, else CONSTELLATION_ID, else the
    config file; None if none is given. A malformed pin is an error naming its source."""
    found: tuple[str, str] | None = None
    if args.constellation:
        found = args.constellation, "--constellation"
    elif os.environ.get(ID_ENV):
        found = os.environ[ID_ENV], ID_ENV
    else:
        found = _config_pin(args.config)
    if found is None:
        return None
    value, source = found
    try:
        return parse_constellation_id(value)
    except ConstellationIdError as error:
        raise ConstellationClientError(f"invalid constellation id in {source}: {error}") from None


def _pin_or_trust(args: argparse.Namespace) -> bytes | None:
    """Returns the pin, or with --trust-on-first-use the id of the node's genesis (said
    loudly on stderr), or None."""
    pin = pinned_id(args)
    if pin is not None or not args.trust_on_first_use:
        return pin
    pin = genesis_id(node_urls(args.node)[1], args.timeout)
    print(
        f"trust on first use: pinned constellation {pin.hex()} as the node claims it; "
        f"verify it out of band, then pin it ({ID_ENV} or the config file)",
        file=sys.stderr,
    )
    return pin


def _verified_lines(head: Constellation) -> list[str]:
    """Returns the human lines of a verified settings head."""
    lines = [
        f"constellation {head.constellation_id.hex()} (pinned; settings chain verified "
        f"to version {head.version})",
        f"alpha {encode_public_key(head.alpha_key)} (verified)",
    ]
    lines += [f"auditor {encode_public_key(key)} (verified)" for key in head.auditor_keys]
    return lines


def _info(args: argparse.Namespace) -> int:
    """Prints the node's public info; with a pin, the keys of the verified settings chain
    (and refuses a node of another constellation), else the node's claims, marked so."""
    info_url = node_urls(args.node)[1]
    info = fetch_info(info_url, args.timeout)
    pin = _pin_or_trust(args)
    lines = [f"state {info.get('state')}, apex {info.get('apex')}"]
    if pin is None:
        lines.append(
            f"constellation {info.get('constellation_id')} (claimed by the node, unverified)"
        )
        lines.append(f"alpha {info.get('alpha')} (claimed by the node, unverified)")
        auditors = info.get("auditors") or []
        lines += [
            f"auditor {a.get('public_key')} {a.get('address')} (unverified)" for a in auditors
        ]
        lines.append(f"not verified: {NO_PIN_TEXT}")
    else:
        head = fetch_verified_head(info_url, pin, args.timeout)
        lines += _verified_lines(head)
        info = {**info, "pinned_constellation_id": pin.hex(), "verified_version": head.version}
        info["verified_auditors"] = [encode_public_key(key) for key in head.auditor_keys]
        info["verified_alpha"] = encode_public_key(head.alpha_key)
    lines.append(f"quote asset {info.get('quote_asset')}")
    lines += [f"asset {a.get('code')}" for a in info.get("assets") or []]
    _emit(args.json, info, lines)
    return EXIT_OK


def _audit(args: argparse.Namespace) -> int:
    """Prints the node's proof of reserves; exit 1 if a vault is short or unreadable."""
    report = fetch_reserves(args.node, args.timeout)
    covered = audit_covered(report)
    lines = audit_lines(report)
    lines.append("every vault covers its liabilities" if covered else "NOT COVERED")
    _emit(args.json, report, lines)
    return EXIT_OK if covered else EXIT_REJECTED


async def _request(client: ConstellationClient, args: argparse.Namespace) -> RequestResult:
    """Sends the quantum request the arguments describe."""
    command = args.command
    if command == "balance":
        return await client.account_data()
    if command == "pay":
        return await client.pay(args.destination, args.asset, args.amount)
    if command in ORDER_COMMANDS:
        return await send_order_command(client, args)
    assert command == "withdraw", command
    return await client.withdraw(args.provider, args.asset, args.amount, args.destination, args.fee)


async def _connect(args: argparse.Namespace, pin: bytes) -> ConstellationClient:
    """Connects to --node, or with --follow-alpha to the alpha its settings name."""
    if args.follow_alpha:
        urls = [url.strip() for url in args.node.split(",") if url.strip()]
        return await ConstellationClient.connect_to_alpha(
            urls, args.secret, constellation_id=pin, timeout_s=args.timeout
        )
    return await ConstellationClient.connect(
        args.node, args.secret, constellation_id=pin, timeout_s=args.timeout
    )


async def _run_on_node(args: argparse.Namespace, pin: bytes) -> int:
    """Connects, runs one node command and prints its outcome."""
    async with await _connect(args, pin) as client:
        quote = client.constellation.quote_asset or ""
        if args.command == "history":
            order = QueryOrder.ASC if args.oldest_first else QueryOrder.DESC
            page = await client.history(args.cursor, order, args.limit)
            return _history_report(page, client, args.json, quote)
        if args.command == "watch":
            return await _watch(client, args, quote)
        result = await _request(client, args)
        waited = result.ok and not args.no_wait
        if waited:
            await result.wait_final(FINALITY_TIMEOUT_S)
        return _report(result, args.json, waited, quote)


async def _watch(client: ConstellationClient, args: argparse.Namespace, quote: str) -> int:
    """Prints the account's notifications as they arrive (JSON: one object per line)."""
    if not args.json:
        print(f"watching account {client.account_id} (Ctrl-C stops)", flush=True)
    async for data, lines in verbs.watch(client, quote, args.count, args.seconds):
        if args.json:
            print(json.dumps(data, sort_keys=True), flush=True)
        else:
            for line in lines:
                print(line, flush=True)
    return EXIT_OK


PUBLIC_COMMANDS = frozenset({"info", "nodes", "depth", "trades", "ticker"})


def _public(args: argparse.Namespace) -> int:
    """Runs a command that needs no secret and signs nothing."""
    if args.command == "info":
        return _info(args)
    if args.command == "nodes":
        data, lines = verbs.nodes(args.node, args.timeout)
    else:
        data, lines = asyncio.run(verbs.market(args.node, args.command, args.market, args.timeout))
    _emit(args.json, data, lines)
    return EXIT_OK


def _faucet(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Funds --to, else the key of the secret, from the demo faucet."""
    public_key = args.to
    if public_key is None:
        if not _secret_valid(args.secret):
            parser.error("faucet needs --to G... or a valid secret (--secret, --secret-file)")
        public_key = KeyPair.from_secret(args.secret).public_key_strkey
    data, lines = verbs.faucet(args.node, public_key, args.asset, args.amount, args.timeout)
    _emit(args.json, data, lines)
    return EXIT_OK


def _normalize_assets(args: argparse.Namespace) -> None:
    """Upper-cases asset and market codes: "usd" means USD (codes are upper case)."""
    for name in ("asset", "market"):
        value = getattr(args, name, None)
        if isinstance(value, str):
            setattr(args, name, value.upper())


def _fail(args: argparse.Namespace, code: int, text: str) -> int:
    """Reports an error: JSON on stdout with --json, else text on stderr; returns `code`."""
    if args.json:
        print(json.dumps({"error": text, "exit_code": code}, sort_keys=True))
    else:
        print(text, file=sys.stderr)
    return code


def _secret_from_file(path: str) -> str:
    """Returns the secret in `path` (stripped); raises ConstellationClientError if unreadable."""
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise ConstellationClientError(f"cannot read the secret file: {error}") from None


def _secret_problem(secret: str | None) -> str:
    """Returns why a given secret is unusable (": ..."), or "" when none was given."""
    if not secret:
        return ": none was given"
    try:
        KeyPair.from_secret(secret)
    except InvalidKey as error:
        return f": the one given is not usable ({error})"
    return ""


def _secret_valid(secret: str | None) -> bool:
    """Tells whether `secret` is a valid S... strkey."""
    try:
        KeyPair.from_secret(secret or "")
    except InvalidKey:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI with `argv` (default: sys.argv[1:]) and returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    CliParser.json_errors = "--json" in argv
    parser = build_parser()
    args = parser.parse_args(argv)
    _normalize_assets(args)
    if args.command == "keygen":
        return _keygen(args)
    try:
        if args.command == "audit":
            return _audit(args)
        if args.command in PUBLIC_COMMANDS:
            return _public(args)
        if not args.secret and args.secret_file:
            args.secret = _secret_from_file(args.secret_file)
        if args.command == "faucet":
            return _faucet(args, parser)
        if not _secret_valid(args.secret):
            parser.error(
                f"a valid S... secret is required (--secret-file, {SECRET_ENV} or --secret)"
                + _secret_problem(args.secret)
            )
        pin = _pin_or_trust(args)
        if pin is None:
            parser.error(NO_PIN_TEXT)
        return asyncio.run(_run_on_node(args, pin))
    except UnverifiedOutcomeError as error:
        return _fail(args, EXIT_UNVERIFIED, f"outcome unknown: {error}")
    except verbs.VerbRefusedError as error:
        return _fail(args, EXIT_REJECTED, f"refused: {error}")
    except ConstellationClientError as error:
        return _fail(args, EXIT_FAILURE, f"error: {error}")
