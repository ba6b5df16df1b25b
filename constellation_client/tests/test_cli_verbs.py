"""Goal: the CLI speaks a trader's units and honours --json and exit codes without a node:
usage errors and transport failures as JSON on stdout, a malformed destination is a usage
error (2), asset codes are case-insensitive, refusals and market data are in decimals, and
effects read as sentences.

Method: the CLI as a subprocess (`python -m constellation_client`) for what a shell sees, and
the pure formatting functions on hand-made feed data and effects."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from constellation_client.cli import EXIT_FAILURE, EXIT_USAGE, build_parser
from constellation_client.describe import effects_sentences, time_text
from constellation_client.market import depth_view, ticker_view, trades_view
from constellation_client.messages import humanize
from exchange.core.orderbook import Side
from quanta.core.keys import KeyPair
from quanta.core.xdr.schema import (
    BalanceUpdateEffect,
    BalanceUpdateSign,
    NonceUpdateEffect,
    OrderPlacedEffect,
    TradeEffect,
)

ROOT = Path(__file__).resolve().parents[2]
SECRET = KeyPair.from_seed(bytes(range(32))).secret
PIN = "aa" * 32


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "constellation_client", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _closed_port() -> int:
    """Returns a loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_usage_error_with_json_is_one_json_object_on_stdout() -> None:
    done = _cli("--json", "--secret", SECRET, "pay", "GNOTAKEY", "USD", "1")
    assert done.returncode == EXIT_USAGE
    answer = json.loads(done.stdout)
    assert answer["exit_code"] == EXIT_USAGE
    assert "not a public key" in answer["error"]


def test_a_malformed_destination_is_a_usage_error_not_a_transport_failure() -> None:
    done = _cli("--secret", SECRET, "--constellation", PIN, "pay", "GNOTAKEY", "USD", "1")
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "not a public key (G...)" in done.stderr


def test_an_unreachable_node_with_json_reports_the_error_as_json() -> None:
    node = f"http://127.0.0.1:{_closed_port()}"
    done = _cli("--json", "--node", node, "--timeout", "2", "ticker", "xlm")
    assert done.returncode == EXIT_FAILURE, done.stderr
    answer = json.loads(done.stdout)
    assert answer["exit_code"] == EXIT_FAILURE and "cannot read" in answer["error"]


def test_asset_codes_are_case_insensitive() -> None:
    from constellation_client import cli

    args = build_parser().parse_args(["pay", KeyPair.random().public_key_strkey, "usd", "1"])
    cli._normalize_assets(args)
    assert args.asset == "USD"
    args = build_parser().parse_args(["depth", "xlm"])
    cli._normalize_assets(args)
    assert args.market == "XLM"


def test_refusals_in_raw_units_read_as_decimals() -> None:
    raw = "insufficient free balance in USD: 157587000000 available, 999999990000000 needed"
    assert humanize(raw) == ("not enough USD: 15758.7 USD available, 99999999 USD needed")
    lot = humanize("order quote amount 20 is below the minimum lot size 1000")
    assert "0.000002" in lot and "0.0001" in lot and "1000" not in lot
    tick = humanize("price 1e-07 is below half a tick (10000 units)")
    assert tick == "price 1e-07 is below half a tick (the tick is 0.001)"
    assert humanize("unknown asset 'DOGE'") == "unknown asset 'DOGE'"


def test_depth_has_decimals_a_cumulative_column_and_the_spread() -> None:
    data = {
        "bids": [{"price": "0.5", "amount": 10_000_000}, {"price": "0.4", "amount": 25_000_000}],
        "asks": [{"price": "0.6", "amount": 5_000_000}],
    }
    view = depth_view("XLM", "USD", data)
    assert view["market"] == "XLM/USD"
    assert [(r["price"], r["amount"], r["cumulative"]) for r in view["bids"]] == [
        ("0.500", "1", "1"),
        ("0.400", "2.5", "3.5"),
    ]
    assert view["spread"] == "0.100"


def test_ticker_states_last_change_spread_and_volume() -> None:
    ticker = {
        "open": "1.0",
        "high": "1.2",
        "low": "0.9",
        "close": "1.1",
        "volume": 30_000_000,
        "quote_volume": 33_000_000,
        "trades": 2,
    }
    depth = {"bids": [{"price": "1.05", "amount": 1}], "asks": [{"price": "1.15", "amount": 1}]}
    view = ticker_view("XLM", "USD", ticker, depth)
    assert (view["last"], view["change_24h"], view["spread"]) == ("1.100", "+10.00%", "0.100")
    assert (view["high_24h"], view["low_24h"], view["volume_24h"]) == ("1.200", "0.900", "3")
    empty = ticker_view("XLM", "USD", {"open": None, "close": None}, {})
    assert (empty["last"], empty["change_24h"], empty["spread"]) == ("-", "-", None)


def test_trades_carry_decimal_amounts_and_totals() -> None:
    trades = [
        {
            "apex": 9,
            "price": "0.125",
            "amount": 80_000_000,
            "quote_amount": 10_000_000,
            "side": "buy",
            "timestamp": 1_700_000_000_000,
        }
    ]
    row = trades_view("XLM", "USD", trades)["trades"][0]
    assert (row["price"], row["amount"], row["total"]) == ("0.125", "8", "1")
    assert time_text(1_700_000_000_000) == "2023-11-14 22:13:20 UTC"


def test_effects_read_as_a_trader_s_sentences() -> None:
    trade = TradeEffect(16, "XLM", Side.BUY, 1_250_000, 80_000_000, 10_000_000, True)
    placed = OrderPlacedEffect(16, 1_250_000, "XLM", Side.BUY, 20_000_000, 2_500_000)
    mirrored = BalanceUpdateEffect("USD", BalanceUpdateSign.MINUS, 10_000_000)
    assert effects_sentences([NonceUpdateEffect(3, 2), trade, mirrored, placed], "USD") == [
        "bought 8 XLM at 0.125 (1 USD; order 16, taker)",
        "order 16 rests on the book: buy 2 XLM at 0.125",
    ]
    received = BalanceUpdateEffect("USD", BalanceUpdateSign.PLUS, 15_000_000)
    assert effects_sentences([received], "USD") == ["received 1.5 USD"]
    assert effects_sentences([NonceUpdateEffect(3, 2)], "USD") == [
        "account data read (no balance changed)"
    ]


def test_a_node_without_a_scheme_gets_a_hint() -> None:
    done = _cli("--json", "--node", "127.0.0.1:8000", "nodes")
    assert done.returncode == EXIT_FAILURE
    assert "did you mean http://127.0.0.1:8000?" in json.loads(done.stdout)["error"]


def test_a_bad_secret_says_why() -> None:
    done = _cli("--json", "--secret", "SBAD", "balance")
    assert done.returncode == EXIT_USAGE
    assert "the one given is not usable" in json.loads(done.stdout)["error"]


def test_json_output_carries_amounts_and_prices_as_decimals() -> None:
    from constellation_client.cli import human_json, jsonable

    effects = [
        TradeEffect(16, "XLM", Side.BUY, 1_250_000, 80_000_000, 10_000_000, True),
        NonceUpdateEffect(3, 2),
    ]
    trade, nonce = human_json(jsonable(effects))
    assert (trade["price"], trade["asset_amount"], trade["quote_amount"]) == ("0.125", "8", "1")
    assert (trade["order_id"], nonce["nonce"]) == (16, 3)


def test_a_watched_payment_names_the_paying_account() -> None:
    from constellation_client.result import RequestResult
    from constellation_client.verbs import notification_output
    from quanta.core.status import StatusCode
    from quanta.core.xdr.schema import (
        EffectsGroup,
        EffectsGroupHash,
        PayloadProof,
        QuantumResultMessage,
    )

    received = BalanceUpdateEffect("USD", BalanceUpdateSign.PLUS, 35_000_000)
    own = EffectsGroup(2, 4, (received,))
    infos = (EffectsGroupHash(7, bytes(32)), own)
    message = QuantumResultMessage(
        0, StatusCode.SUCCESS, "", 12, bytes(32), PayloadProof(bytes(32), ()), infos, None
    )
    result = RequestResult(0, StatusCode.SUCCESS, apex=12, effects=own, message=message)
    data, lines = notification_output(result, "USD")
    assert data["events"] == ["received 3.5 USD (from account 7)"]
    assert data["other_accounts"] == [7]
    assert lines == ["apex 12 (acknowledged, not final yet): received 3.5 USD (from account 7)"]
