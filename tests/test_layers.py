"""The layers of the apps hold: cores import only cores, `exchange/core` nothing of quanta,
only the node runtime (`quanta/node/`) imports payments or chronicler, no app imports the
project package, and no import cycle runs between packages.

Method: `tools/import_layers.py` parses every non-test module with `ast` (imports inside
functions too) and sorts it into a unit; the last test runs the same checker over a planted
tree to show it catches each kind of violation. The wiring (`constellation_site/`, every
app's `routing.py`) may import any app: it composes the consumers.
"""

from __future__ import annotations

from pathlib import Path

from tools.import_layers import broken_rules, cycles, imports

ROOT = Path(__file__).resolve().parent.parent


def test_no_layer_rule_is_broken() -> None:
    broken = [(i.path, i.module, rule) for i, rule in broken_rules(imports(ROOT))]
    assert not broken, broken


def test_no_cycle_between_packages() -> None:
    assert cycles(imports(ROOT)) == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_checker_catches_planted_violations(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "quanta/core/engine.py": "def f():\n    from quanta.models import X\n",
            "exchange/core/books.py": "import quanta.core.keys\n",
            "quanta/consumers/gateway.py": "from payments.payouts import PayoutDesk\n",
            "herald/link.py": "from constellation_site import settings\n",
            "quanta/node/alpha_worker.py": "from payments.payouts import PayoutDesk\n",
            "payments/payouts.py": "from quanta.core.alpha import AlphaNode\n",
            "quanta/services.py": "from chronicler.services import x\n",
            "quanta/tests/test_x.py": "from payments.payouts import PayoutDesk\n",
        },
    )
    found = imports(root)
    rules = {(i.path, rule) for i, rule in broken_rules(found)}
    assert rules == {
        ("quanta/core/engine.py", "a core imports only cores"),
        ("exchange/core/books.py", "exchange/core imports nothing of quanta"),
        ("quanta/consumers/gateway.py", "only quanta/node imports payments or chronicler"),
        ("herald/link.py", "no app imports constellation_site (or a routing module)"),
        ("quanta/services.py", "only quanta/node imports payments or chronicler"),
    }
    assert cycles(found) == [["payments", "quanta"]]
