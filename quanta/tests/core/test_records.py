"""`record`: value semantics as a frozen dataclass had them, slots, fields in declared order."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from quanta.core.records import record
from quanta.core.xdr.schema import NodeSignature


@record
class Pair:
    first: int
    second: bytes


def test_records_compare_and_hash_by_value() -> None:
    a, b = Pair(1, b"x"), Pair(1, b"x")
    assert a == b and a is not b
    assert hash(a) == hash(b)
    assert {a: "found"}[b] == "found"
    assert Pair(1, b"x") != Pair(2, b"x")


def test_records_have_slots_and_their_fields_in_declared_order() -> None:
    pair = Pair(1, b"x")
    assert not hasattr(pair, "__dict__")
    with pytest.raises(AttributeError):
        pair.third = 3  # type: ignore[attr-defined]
    assert [f.name for f in dataclasses.fields(Pair)] == ["first", "second"]
    assert dataclasses.replace(pair, second=b"y") == Pair(1, b"y")


def test_schema_structures_are_records() -> None:
    signature = NodeSignature(2, b"s" * 64)
    assert hash(signature) == hash(NodeSignature(2, b"s" * 64))
    assert not hasattr(signature, "__dict__")


def test_mypy_refuses_assigning_a_field(tmp_path: Path) -> None:
    """Immutability is the type checker's: CI's strict mypy on the cores refuses this line.
    (In a child process: mypy raises the interpreter's recursion limit for good.)"""
    source = tmp_path / "assigns.py"
    source.write_text(
        "from quanta.core.xdr.schema import NodeSignature\n"
        "signature = NodeSignature(1, bytes(64))\n"
        "signature.auditor_index = 2\n"
    )
    command = [sys.executable, "-m", "mypy", str(source), "--no-incremental"]
    checked = subprocess.run(  # noqa: S603 - our interpreter, our file
        [*command, "--follow-imports=silent"], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert 'Property "auditor_index" defined in "NodeSignature" is read-only' in checked.stdout
