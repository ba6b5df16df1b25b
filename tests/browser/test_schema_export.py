"""The schema the browser interprets (`static/js/schema.js`) is the current Python schema.

Method: the exporter renders the schema again and the test compares it with the file on disk,
so a change to `quanta/core/xdr/schema.py` without re-running the exporter fails here.
"""

from __future__ import annotations

from quanta.core.xdr import schema
from tools import export_schema


def test_exported_schema_is_up_to_date() -> None:
    """Fails with the command to run when static/js/schema.js is stale."""
    current = export_schema.OUTPUT.read_text()
    assert current == export_schema.render(), "run: python tools/export_schema.py"


def test_export_covers_every_message_arm_and_effect() -> None:
    """Every arm of the Message and Effect unions is exported with its discriminant."""
    description = export_schema.schema_description()
    arms = description["unions"]["Message"]["arms"]
    assert arms == {str(int(k)): cls.__name__ for k, cls in sorted(schema.MESSAGE.arms.items())}
    effects = description["unions"]["Effect"]["arms"]
    assert set(effects.values()) == {cls.__name__ for cls in schema.EFFECT.arms.values()}
    order = description["structs"]["OrderRequest"]
    assert [name for name, _ in order] == [
        "message_id",
        "account",
        "nonce",
        "asset",
        "side",
        "amount",
        "price",
        "time_in_force",
        "client_order_id",
    ]
    assert order[6][1] == "double"
