"""Goal: the CLI parses what its help promises and runs `keygen` end to end without a node.

Method: call `main([...])` and `build_parser()` directly, capturing stdout and exit codes."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from constellation_client import cli
from constellation_client.audit import reserves_url
from constellation_client.cli import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    build_parser,
    jsonable,
    main,
    pinned_id,
)
from constellation_client.tests.builders import auditors, own_group, trusted
from quanta.core.keys import KeyPair
from quanta.core.xdr.schema import AccountDataInfo, BalanceInfo

ROOT = Path(__file__).resolve().parents[2]
SECRET = KeyPair.from_seed(bytes(range(32))).secret
PAYEE = KeyPair.from_seed(bytes(range(1, 33))).public_key_strkey


def test_keygen_prints_a_matching_key_pair(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    secret = lines[0].removeprefix("secret: ")
    public = lines[1].removeprefix("public: ")
    assert KeyPair.from_secret(secret).public_key_strkey == public


def test_keygen_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "keygen"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert KeyPair.from_secret(data["secret"]).public_key_strkey == data["public_key"]


def test_pay_amount_is_parsed_exactly() -> None:
    args = build_parser().parse_args(["--secret", SECRET, "pay", PAYEE, "USD", "12.5"])
    assert (args.command, args.destination, args.asset, args.amount) == (
        "pay",
        PAYEE,
        "USD",
        125_000_000,
    )


def test_order_arguments() -> None:
    args = build_parser().parse_args(["order", "sell", "XLM", "3", "0.125", "--ioc"])
    assert (args.side, args.asset, args.amount, args.price, args.ioc) == (
        "sell",
        "XLM",
        30_000_000,
        0.125,
        True,
    )


def test_withdraw_and_history_arguments() -> None:
    parser = build_parser()
    args = parser.parse_args(["withdraw", "local-vault", "USD", "1", "DEST", "--fee", "0.01"])
    assert (args.provider, args.amount, args.destination, args.fee) == (
        "local-vault",
        10_000_000,
        "DEST",
        100_000,
    )
    args = parser.parse_args(["--no-wait", "history", "--cursor", "5", "--desc", "--limit", "9"])
    assert (args.cursor, args.desc, args.limit, args.no_wait) == (5, True, 9, True)


@pytest.mark.parametrize(
    "argv",
    [
        ["pay", "G", "USD", "0.00000001"],
        ["pay", "G", "USD", "-1"],
        ["order", "hold", "XLM", "1", "1"],
        ["order", "buy", "XLM", "1", "0"],
        ["cancel", "abc"],
        [],
    ],
)
def test_bad_arguments_exit_with_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == EXIT_USAGE


def test_node_command_without_secret_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSTELLATION_SECRET", raising=False)
    with pytest.raises(SystemExit) as raised:
        main(["balance"])
    assert raised.value.code == EXIT_USAGE


def test_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSTELLATION_SECRET", SECRET)
    assert build_parser().parse_args(["balance"]).secret == SECRET


def test_the_secret_may_come_from_a_file_kept_off_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CONSTELLATION_SECRET", raising=False)
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    monkeypatch.setenv("CONSTELLATION_SECRET_FILE", str(path))
    assert build_parser().parse_args(["balance"]).secret_file == str(path)
    # Read (and valid): the command gets as far as the node, which is not there.
    pin = ["--constellation", "ab" * 32]
    code = main(["--node", "http://127.0.0.1:9", "--timeout", "1", *pin, "balance"])
    assert code != EXIT_USAGE
    assert "secret" not in capsys.readouterr().err


def test_an_unreadable_secret_file_is_an_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CONSTELLATION_SECRET", raising=False)
    code = main(["--secret-file", str(tmp_path / "absent"), "balance"])
    assert code != EXIT_OK
    assert "cannot read the secret file" in capsys.readouterr().err


def test_jsonable_names_types_and_hexes_bytes() -> None:
    data = jsonable(own_group())
    assert data["type"] == "EffectsGroup"
    assert data["effects"][1] == {
        "type": "BalanceUpdateEffect",
        "asset": "USD",
        "sign": "MINUS",
        "amount": 5_000_000,
    }
    json.dumps(data)


def test_package_runs_as_module_without_django() -> None:
    code = (
        "import sys, constellation_client, constellation_client.cli;"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('django', 'channels')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "constellation_client", "keygen"],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.stdout.startswith("secret: S")


# --- the pinned constellation id -----------------------------------------------------------

PIN_A, PIN_B, PIN_C = "aa" * 32, "bb" * 32, "cc" * 32


def _no_pin_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CONSTELLATION_ID", raising=False)
    monkeypatch.delenv("CONSTELLATION_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # No ~/.config/constellation/client.toml.


def test_the_pin_comes_from_flag_then_environment_then_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_pin_env(monkeypatch, tmp_path)
    config = tmp_path / "client.toml"
    config.write_text(f'constellation_id = "{PIN_C}"\n')
    parser = build_parser()
    assert pinned_id(parser.parse_args(["balance"])) is None
    assert pinned_id(parser.parse_args(["--config", str(config), "balance"])) == bytes.fromhex(
        PIN_C
    )
    monkeypatch.setenv("CONSTELLATION_ID", PIN_B)
    args = parser.parse_args(["--config", str(config), "balance"])
    assert pinned_id(args) == bytes.fromhex(PIN_B)
    args = parser.parse_args(["--constellation", PIN_A, "--config", str(config), "balance"])
    assert pinned_id(args) == bytes.fromhex(PIN_A)


def test_the_default_config_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _no_pin_env(monkeypatch, tmp_path)
    path = tmp_path / ".config" / "constellation" / "client.toml"
    path.parent.mkdir(parents=True)
    path.write_text(f'constellation_id = "{PIN_C.upper()}"\n')
    assert pinned_id(build_parser().parse_args(["balance"])) == bytes.fromhex(PIN_C)


def test_a_malformed_pin_names_its_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_pin_env(monkeypatch, tmp_path)
    monkeypatch.setenv("CONSTELLATION_ID", "1234")
    assert main(["--secret", SECRET, "balance"]) == EXIT_FAILURE
    assert "invalid constellation id in CONSTELLATION_ID: a constellation id is 64 hex" in (
        capsys.readouterr().err
    )


def test_without_a_pin_node_commands_refuse_and_say_how_to_pin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_pin_env(monkeypatch, tmp_path)
    with pytest.raises(SystemExit) as raised:
        main(["--secret", SECRET, "pay", PAYEE, "USD", "1"])
    assert raised.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no constellation id pinned" in err and "--constellation HEX" in err
    assert "CONSTELLATION_ID" in err and "client.toml" in err


def test_trust_on_first_use_prints_the_id_it_pinned(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_pin_env(monkeypatch, tmp_path)
    monkeypatch.setattr(cli, "genesis_id", lambda url, timeout_s: bytes.fromhex(PIN_A))
    args = build_parser().parse_args(["--trust-on-first-use", "balance"])
    assert cli._pin_or_trust(args) == bytes.fromhex(PIN_A)
    assert f"trust on first use: pinned constellation {PIN_A}" in capsys.readouterr().err


def test_info_with_a_pin_shows_the_verified_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = auditors(3)
    head = trusted(pairs, bytes.fromhex(PIN_A))
    head = dataclasses.replace(head, version=2)
    claimed = {"state": "Ready", "apex": 9, "alpha": "GFORGED", "auditors": [], "assets": []}
    monkeypatch.setattr(cli, "fetch_info", lambda url, timeout_s: claimed)
    monkeypatch.setattr(cli, "fetch_verified_head", lambda url, pin, timeout_s: head)
    assert main(["--constellation", PIN_A, "info"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"constellation {PIN_A} (pinned; settings chain verified to version 2)" in out
    assert f"alpha {pairs[0].public_key_strkey} (verified)" in out
    assert "GFORGED" not in out


def test_balances_are_labelled_alpha_attested() -> None:
    data = AccountDataInfo(7, 12, (BalanceInfo("USD", 10_000_000, 0),), (), bytes(32))
    lines = cli._account_lines(data)
    assert lines[0] == "account 7 (alpha-attested)"
    assert lines[1] == "  USD: 1 (locked 0, available 1)"


def test_info_without_a_pin_marks_the_node_s_claims_unverified(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_pin_env(monkeypatch, tmp_path)
    claimed = {"state": "Ready", "apex": 9, "alpha": "GCLAIMED", "constellation_id": PIN_B}
    monkeypatch.setattr(cli, "fetch_info", lambda url, timeout_s: claimed)
    assert main(["info"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"constellation {PIN_B} (claimed by the node, unverified)" in out
    assert "alpha GCLAIMED (claimed by the node, unverified)" in out
    assert "no constellation id pinned" in out


REPORT = {
    "apex": 42,
    "state_hash": "ab" * 32,
    "assets": [
        {
            "asset": "XLM",
            "accounts": "3970000000",
            "fee_account": "30000000",
            "liabilities": "4000000000",
            "vault": "4000000000",
            "difference": "0",
            "providers": [
                {
                    "provider": "local-vault",
                    "vault": "VAULT",
                    "cursor": "17",
                    "balance": "4000000000",
                    "error": "",
                }
            ],
        }
    ],
}


def test_audit_prints_both_sides_the_difference_and_the_state_hash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "fetch_reserves", lambda node, timeout_s: REPORT)
    assert main(["audit"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"apex 42, state hash {'ab' * 32}" in out
    assert "XLM: vault 400, liabilities 400 (accounts 397 + fee account 3), difference 0" in out
    assert "local-vault vault VAULT at cursor 17: 400" in out


def test_audit_fails_on_a_shortfall_or_an_unreadable_vault(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    short = json.loads(json.dumps(REPORT))
    short["assets"][0].update(vault="3990000000", difference="-10000000")
    monkeypatch.setattr(cli, "fetch_reserves", lambda node, timeout_s: short)
    assert main(["audit"]) == EXIT_REJECTED
    assert "difference -1" in capsys.readouterr().out
    unreadable = json.loads(json.dumps(REPORT))
    unreadable["assets"][0].update(vault=None, difference=None)
    unreadable["assets"][0]["providers"][0].update(balance=None, error="Horizon: down")
    monkeypatch.setattr(cli, "fetch_reserves", lambda node, timeout_s: unreadable)
    assert main(["audit"]) == EXIT_REJECTED
    assert "Horizon: down" in capsys.readouterr().out


def test_audit_reads_the_reserves_endpoint_of_the_node() -> None:
    assert reserves_url("http://h:8001") == "http://h:8001/api/constellation/reserves"
    assert reserves_url("ws://h:8001/ws/") == "http://h:8001/api/constellation/reserves"
