"""`manage.py init_constellation`: builds, signs and writes or posts the first settings.

Goal: an operator can initialize from arguments or a JSON file, collect auditors' signatures
made elsewhere, and is refused with a clear message before anything is sent when the
settings or the signatures would not pass. (Posting to a node is covered by the cluster
harness, which initializes every test cluster through the same endpoint.)
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from quanta.core.settings_json import settings_to_json
from quanta.core.testing import default_settings, keypair
from quanta.core.xdr.codec import decode
from quanta.core.xdr.schema import ConstellationMessageEnvelope

NODES = [keypair(20), keypair(21), keypair(22)]


def _auditor_args() -> list[str]:
    return [f"{k.public_key_strkey}=http://127.0.0.1:{8000 + i}" for i, k in enumerate(NODES)]


def _written(path: Path) -> ConstellationMessageEnvelope:
    return decode(ConstellationMessageEnvelope, base64.b64decode(path.read_text()))


def test_from_arguments_signed_here(tmp_path: Path) -> None:
    out = tmp_path / "update.b64"
    call_command(
        "init_constellation",
        auditor=_auditor_args(),
        asset=["XLM"],
        sign=[NODES[0].secret, NODES[1].secret],
        output=out,
    )
    envelope = _written(out)
    settings = envelope.message.settings  # type: ignore[union-attr]
    assert settings.alpha == NODES[0].public_key
    assert [a.code for a in settings.assets] == ["USD", "XLM"]
    assert len(envelope.signatures) == 2


def test_from_a_json_file_with_signatures_made_elsewhere(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(settings_to_json(default_settings(NODES))))
    call_command(
        "init_constellation", settings_file=path, sign=[NODES[2].secret], signature_only=True
    )
    line = capsys.readouterr().out.strip()
    assert line.startswith(NODES[2].public_key_strkey + ":")
    out = tmp_path / "update.b64"
    call_command(
        "init_constellation",
        settings_file=path,
        sign=[NODES[0].secret],
        signature=[line],
        output=out,
    )
    assert len(_written(out).signatures) == 2


def test_too_few_signatures_are_refused_before_sending(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="signed by 1 of 3 auditors; 2 required"):
        call_command(
            "init_constellation",
            auditor=_auditor_args(),
            sign=[NODES[0].secret],
            output=tmp_path / "x",
        )
    assert not (tmp_path / "x").exists()


def test_duplicate_auditors_are_refused(tmp_path: Path) -> None:
    twice = [_auditor_args()[0], _auditor_args()[0]]
    with pytest.raises(CommandError, match="refused"):
        call_command(
            "init_constellation", auditor=twice, sign=[NODES[0].secret], output=tmp_path / "x"
        )


def test_bad_settings_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"alpha": "nope", "auditors": []}))
    with pytest.raises(CommandError, match="bad settings: alpha"):
        call_command("init_constellation", settings_file=path, sign=[NODES[0].secret])


def test_digest_prints_what_to_sign(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("init_constellation", auditor=_auditor_args(), digest=True)
    out = capsys.readouterr().out
    assert "sha256 to sign: " in out
    assert "bytes (base64): " in out


def test_keys_can_be_read_from_files_instead_of_the_command_line(tmp_path: Path) -> None:
    files = []
    for index, node in enumerate(NODES[:2]):
        files.append(tmp_path / f"key{index}")
        files[-1].write_text(node.secret + "\n")
    out = tmp_path / "update.b64"
    call_command(
        "init_constellation",
        auditor=_auditor_args(),
        asset=["XLM"],
        sign_file=[str(f) for f in files],
        output=out,
    )
    envelope = _written(out)
    assert {s.signer for s in envelope.signatures} == {n.public_key for n in NODES[:2]}
    with pytest.raises(CommandError, match="cannot read"):
        call_command(
            "init_constellation", auditor=_auditor_args(), sign_file=[str(tmp_path / "none")]
        )


def test_settings_from_arguments_limit_requests_per_account_by_default(tmp_path: Path) -> None:
    out = tmp_path / "update.b64"
    call_command(
        "init_constellation", auditor=_auditor_args(), sign=[n.secret for n in NODES], output=out
    )
    limits = _written(out).message.settings.request_rate_limits  # type: ignore[union-attr]
    assert (limits.minute_limit, limits.hour_limit) == (1_200, 36_000)
