"""Goal: the CLI parses what its help promises and runs `keygen` end to end without a node.

Method: call `main([...])` and `build_parser()` directly, capturing stdout and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from constellation_client.cli import EXIT_OK, EXIT_USAGE, build_parser, jsonable, main
from constellation_client.tests.builders import own_group
from quanta.core.keys import KeyPair

ROOT = Path(__file__).resolve().parents[2]
SECRET = KeyPair.from_seed(bytes(range(32))).secret


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
    args = build_parser().parse_args(["--secret", SECRET, "pay", "GDEST", "USD", "12.5"])
    assert (args.command, args.destination, args.asset, args.amount) == (
        "pay",
        "GDEST",
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
