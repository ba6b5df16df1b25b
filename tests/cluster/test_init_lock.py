"""Nobody but the constellation's own nodes can initialize it (SECURITY.md H1), with real processes.

Goal: on an uninitialized alpha, the takeover of H1 (settings naming the real alpha key and
auditors [alpha, X1, X2], signed by the attacker's X1 and X2) is refused with a status and a
reason, and leaves the node as it was; so are settings naming another alpha (they used to
brick the node), an init without or with a wrong one-time token (401/403) and a text/plain
body (415, what a foreign page can post). The legitimate init then succeeds and the token is
spent (409). A node that makes its own token prints it in its engine log, and the operator can
initialize with it; an auditor the genesis lists but that did not sign it refuses it (Failed,
"genesis refused"), while the others finalize.
Method: clusters from tools/cluster.py, started without initializing; HTTP against alpha's
`/api/constellation/init`; states from `/api/constellation/info`. Before the fix the takeover
and the other-alpha settings were answered 200 (and init needed no token).
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from quanta.core.keys import KeyPair
from quanta.core.testing import default_settings, settings_quantum
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import ConstellationSettings
from tools.cluster import Cluster, free_base_port, wait_for_state

TOKEN_IN_LOG = re.compile(r"one-time initialization token is (\S+)")


def _cluster(size: int, tmp_path_factory: pytest.TempPathFactory, **node0: str) -> Cluster:
    name = f"lock{os.getpid()}n{size}{len(node0)}"
    base = free_base_port(size, 19_000 + (os.getpid() % 50) * 40 + 20 * len(node0))
    workdir: Path = tmp_path_factory.mktemp(name)
    return Cluster(size, name=name, base_port=base, workdir=workdir, node_env={0: node0})


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three nodes, started and not initialized (alpha holds the cluster's token)."""
    cluster = _cluster(3, tmp_path_factory)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _settings(cluster: Cluster, keys: list[KeyPair]) -> ConstellationSettings:
    return default_settings(keys, addresses=[node.url for node in cluster.nodes])


def _assert_untouched(cluster: Cluster) -> None:
    info = cluster.info()
    assert info["state"] == "Undefined", info
    assert "auditors" not in info and "alpha" not in info, info


def test_a_text_plain_body_is_415(fresh: Cluster) -> None:
    request = urllib.request.Request(
        f"{fresh.alpha.url}/api/constellation/init",
        data=b"anything",
        headers={"Content-Type": "text/plain", "X-Init-Token": fresh.init_token},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 415
    _assert_untouched(fresh)


@pytest.mark.parametrize(("token", "status"), [("", 401), ("not-the-token", 403)])
def test_init_needs_the_one_time_token(fresh: Cluster, token: str, status: int) -> None:
    keys = [node.keypair for node in fresh.nodes]
    answer = fresh.init_post(encode(settings_quantum(_settings(fresh, keys), keys).update), token)
    assert answer["http_status"] == status, answer
    assert "token" in str(answer["description"]), answer
    _assert_untouched(fresh)


def test_the_h1_takeover_is_refused(fresh: Cluster) -> None:
    attackers = [KeyPair.random(), KeyPair.random()]
    settings = _settings(fresh, [fresh.alpha.keypair, *attackers])  # alpha: the real key
    answer = fresh.init_post(encode(settings_quantum(settings, attackers).update))
    assert answer["http_status"] == 403, answer
    assert "no valid signature of alpha" in str(answer["description"]), answer
    _assert_untouched(fresh)


def test_settings_naming_another_alpha_are_refused(fresh: Cluster) -> None:
    keys = [node.keypair for node in fresh.nodes]
    other = dataclasses.replace(_settings(fresh, keys), alpha=keys[1].public_key)
    answer = fresh.init_post(encode(settings_quantum(other, keys).update))
    assert answer["http_status"] == 403, answer
    assert "as alpha" in str(answer["description"]), answer
    _assert_untouched(fresh)


def test_then_the_legitimate_init_succeeds_once(fresh: Cluster) -> None:
    answer = fresh.initialize()
    assert answer["http_status"] == 200 and answer["status"] == 200, answer
    for node in fresh.nodes:
        wait_for_state(fresh, "Ready", 60, node)
    assert fresh.info()["alpha"] == fresh.alpha.keypair.public_key_strkey
    again = fresh.initialize()
    assert again["http_status"] == 409, again


def _token_from_log(cluster: Cluster, timeout_s: float = 30.0) -> str:
    log = cluster.workdir / "node0-engine.log"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = TOKEN_IN_LOG.search(log.read_text() if log.exists() else "")
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise TimeoutError(f"no initialization token in {log}")


def test_a_generated_token_is_logged_and_an_unsigning_auditor_refuses_the_genesis(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    cluster = _cluster(3, tmp_path_factory, CONSTELLATION_INIT_TOKEN="")
    try:
        cluster.start()
        token = _token_from_log(cluster)
        assert token != cluster.init_token
        keys = [node.keypair for node in cluster.nodes]
        signed = settings_quantum(_settings(cluster, keys), keys[:2]).update  # not node 2
        answer = cluster.init_post(encode(signed), token)
        assert answer["http_status"] == 200, answer
        wait_for_state(cluster, "Ready", 60, cluster.nodes[1])
        info = wait_for_state(cluster, "Failed", 60, cluster.nodes[2])
        assert "genesis refused" in str(info["reason"]), info
        assert cluster.init_post(encode(signed), token)["http_status"] == 409
    finally:
        cluster.stop()
