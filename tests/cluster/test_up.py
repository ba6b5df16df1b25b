"""tools/up.sh's constellation (tools/run_constellation.py) across runs.

Goal: a second run while one is running refuses with a sentence (no traceback) and leaves the
running one's databases alone, also while the first is still starting (its servers do not
listen yet); a run after a stop keeps the constellation (same id, same demo
keys, funds still there) and says so; `--fresh` starts a new one and says so.
Method: run_constellation.py as a subprocess (up.sh only runs tools/setup.sh before it) with
its own name and a free port; its output is read line by line with a deadline; SIGINT stops
it as Ctrl-C would.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.cluster import _admin_execute, database_exists, free_base_port

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
NAME = f"up{os.environ.get('CONSTELLATION_TEST_RUN', '')}".replace("-", "_")
START_TIMEOUT_S = 180


def database_drop(name: str) -> None:
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def http_get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
        data = json.loads(response.read())
    assert isinstance(data, dict)
    return data


class Run:
    """One run_constellation.py process and the lines it printed."""

    def __init__(self, port: int, *extra: str) -> None:
        argv = [sys.executable, "tools/run_constellation.py", "--name", NAME, "--port", str(port)]
        argv += ["--auditors", "0", "--demo-accounts", "1", *extra]
        self.process = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, fragment: str) -> str:
        """Returns the first line containing `fragment` (fails at the end of the output)."""
        while True:
            line = self._queue.get(timeout=START_TIMEOUT_S)
            if line is None:
                raise AssertionError(f"{fragment!r} never printed: {self.lines}")
            self.lines.append(line)
            if fragment in line:
                return line

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)


@pytest.fixture
def port() -> Iterator[int]:
    base = free_base_port(1, 19_400 + (os.getpid() % 50) * 20)
    yield base
    for database in (f"constellation_{NAME}_0", f"constellation_{NAME}_ledger"):
        database_drop(database)
    shutil.rmtree(ROOT / "var" / NAME, ignore_errors=True)
    (ROOT / "var" / f"up-port-{base}.lock").unlink(missing_ok=True)


def test_runs_keep_the_constellation_refuse_a_taken_port_and_fresh_starts_over(
    port: int,
) -> None:
    first = Run(port, "--fresh")
    try:
        assert "starting a FRESH constellation (--fresh was given)" in first.until("FRESH")
        first.until("Ctrl-C stops everything")
        url = f"http://127.0.0.1:{port}"
        constellation = http_get_json(f"{url}/api/constellation/info")["constellation_id"]
        demo_line = next(line for line in first.lines if "secret S" in line)

        second = Run(port)
        assert second.process.wait(timeout=60) == 1
        refused = second.until("refused")
        running = f"already running on port {port} (pid {first.process.pid}"
        assert running in refused and "nothing was started" in refused
        assert not any("Traceback" in line for line in second.lines)
        assert database_exists(f"constellation_{NAME}_0")
        again = http_get_json(f"{url}/api/constellation/info")
        assert (again["constellation_id"], again["state"]) == (constellation, "Ready")
    finally:
        assert first.stop() == 0

    kept = Run(port)
    try:
        assert "keeping the constellation of the last run" in kept.until("keeping")
        kept.until("Ctrl-C stops everything")
        assert demo_line in kept.lines
        info = http_get_json(f"http://127.0.0.1:{port}/api/constellation/info")
        assert info["constellation_id"] == constellation
    finally:
        assert kept.stop() == 0

    fresh = Run(port, "--fresh")
    try:
        fresh.until("Ctrl-C stops everything")
        info = http_get_json(f"http://127.0.0.1:{port}/api/constellation/info")
        assert info["constellation_id"] != constellation
        assert demo_line not in fresh.lines
    finally:
        assert fresh.stop() == 0


def test_a_second_run_while_the_first_is_starting_refuses_at_once(port: int) -> None:
    """The race of the review (finding 7): the first run's servers do not listen while it
    drops and creates its databases, so a port check alone let a second run drop them too."""
    first = Run(port, "--fresh")
    try:
        first.until("starting a FRESH constellation")
        second = Run(port, "--fresh")
        assert second.process.wait(timeout=30) == 1
        refused = second.until("refused")
        running = f"a constellation is already running on port {port} (pid {first.process.pid}"
        assert running in refused
        assert "nothing was started or changed" in refused
        assert not any("FRESH" in line or "Traceback" in line for line in second.lines)
        first.until("Ctrl-C stops everything")
        info = http_get_json(f"http://127.0.0.1:{port}/api/constellation/info")
        assert info["state"] == "Ready"
        kept = json.loads((ROOT / "var" / NAME / "constellation.json").read_text())
        demo_line = next(line for line in first.lines if "secret S" in line)
        assert kept["demo"][0] in demo_line
    finally:
        assert first.stop() == 0


def test_a_port_taken_by_something_else_is_refused_before_anything(port: int) -> None:
    """Not another run (no lock held): the port check refuses, nothing is created."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        run = Run(port, "--fresh")
        assert run.process.wait(timeout=60) == 1
        refused = run.until("refused")
        assert f"port {port} is in use" in refused and "nothing was started" in refused
    assert not any("FRESH" in line for line in run.lines)
    assert not database_exists(f"constellation_{NAME}_0")
