"""`init_constellation` presents alpha's one-time initialization token when it posts.

Goal: the token comes from `--init-token`, else `--init-token-file`, else the environment
(CONSTELLATION_INIT_TOKEN[_FILE]), and goes out as `X-Init-Token`; with none the command
refuses before sending anything, saying where the token is.
Method: `urlopen` replaced by a recorder (no node runs); settings signed here.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from quanta.core.testing import keypair
from quanta.management.commands import init_constellation

NODES = [keypair(280), keypair(281)]
ARGS: dict[str, Any] = {
    "auditor": [f"{k.public_key_strkey}=http://127.0.0.1:{8000 + i}" for i, k in enumerate(NODES)],
    "sign": [k.secret for k in NODES],
    "node": "http://alpha.invalid",
}


class Recorder:
    """Stands in for urlopen: keeps the requests, answers 200."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def __call__(self, request: Any, timeout: float) -> Any:
        self.requests.append(request)
        return io.BytesIO(json.dumps({"status": 200}).encode())


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(init_constellation.urllib.request, "urlopen", recorder)
    return recorder


def _token_sent(recorder: Recorder) -> str:
    (request,) = recorder.requests
    assert request.full_url == "http://alpha.invalid/api/constellation/init"
    return str(request.get_header("X-init-token"))


def test_the_option_wins(sent: Recorder, settings: Any) -> None:
    settings.INIT_TOKEN = "from-env"
    call_command("init_constellation", init_token="from-option", **ARGS)
    assert _token_sent(sent) == "from-option"


def test_a_token_file(sent: Recorder, tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("from-file\n")
    call_command("init_constellation", init_token_file=path, **ARGS)
    assert _token_sent(sent) == "from-file"


def test_the_environment(sent: Recorder, settings: Any) -> None:
    settings.INIT_TOKEN = "from-env"
    call_command("init_constellation", **ARGS)
    assert _token_sent(sent) == "from-env"


def test_no_token_is_refused_before_sending(sent: Recorder, settings: Any) -> None:
    settings.INIT_TOKEN = ""
    with pytest.raises(CommandError, match="one-time initialization token"):
        call_command("init_constellation", **ARGS)
    assert sent.requests == []
