"""A settings update on a real 3-node constellation.

Goal: show that new settings signed by a majority of the auditors in force become a quantum
every node executes (each node's info shows the new version), that one signature is not
enough, and that the nodes' state hashes converge, also after alpha's engine restarts.
Method: the auditors sign with `manage.py sign_settings_update` in their own node environment
(their node secret), the update is posted to alpha's /api/constellation/update. Bounded waits.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import html
import http.cookiejar
import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from quanta.core.settings_json import settings_from_json
from quanta.core.settings_update import signature_from_text, update_envelope, update_sign
from quanta.core.signatures import update_bytes
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    AssetSettings,
    ConstellationSettings,
    ConstellationUpdate,
    Signature,
)
from tests.cluster.conftest import cluster_start, run
from tests.cluster.test_consensus import UNIT, converged_state_hashes, funded_pair
from tools.cluster import Cluster, http_post_json, wait_for_restart

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = cluster_start(3, tmp_path_factory, CONSTELLATION_SNAPSHOT_INTERVAL_S="1")
    yield cluster
    cluster.stop()


def next_update(cluster: Cluster, asset: str) -> ConstellationUpdate:
    """Returns the settings in force with `asset` added and a larger minimum lot."""
    current = settings_from_json(cluster.info())
    settings = dataclasses.replace(
        current,
        version=current.version + 1,
        assets=(*current.assets, AssetSettings(asset, False, False)),
        min_allowed_lot_size=5_000,
    )
    return ConstellationUpdate(int(time.time()), settings)


def post_update(
    cluster: Cluster, update: ConstellationUpdate, signatures: list[Signature]
) -> dict[str, object]:
    """Posts the update with `signatures` to alpha; returns the engine's verdict."""
    envelope = base64.b64encode(encode(update_envelope(update, signatures))).decode()
    url = f"{cluster.alpha.url}/api/constellation/update"
    return http_post_json(url, json.dumps({"envelope": envelope}))


def wait_for_version(
    cluster: Cluster, version: int, timeout_s: float = 30
) -> list[dict[str, object]]:
    """Waits until every node's info shows settings `version`; returns the infos."""
    deadline = time.monotonic() + timeout_s
    while True:
        infos = [cluster.info(node) for node in cluster.nodes]
        if all(info.get("settings_version") == version for info in infos):
            return infos
        if time.monotonic() > deadline:
            raise TimeoutError(f"settings v{version} not everywhere: {infos}")
        time.sleep(0.2)


def test_update_signed_by_a_majority_takes_effect_on_every_node(three: Cluster) -> None:
    update = next_update(three, "EUR")
    message = base64.b64encode(update_bytes(update)).decode()
    lines = [
        three.manage(node, "sign_settings_update", "--message", message).strip().splitlines()[-1]
        for node in three.nodes[1:]
    ]
    signatures = [signature_from_text(line) for line in lines]

    refused = post_update(three, update, signatures[:1])
    assert refused["status"] == 401, refused
    # A majority of the right keys, but signed for another constellation, counts for nothing.
    keys = [node.keypair for node in three.nodes]
    elsewhere = post_update(three, update, [update_sign(update, k, bytes(32)) for k in keys])
    assert elsewhere["status"] == 401, elsewhere
    assert three.info()["settings_version"] == 1

    answer = post_update(three, update, signatures)
    assert answer["status"] == 200, answer
    infos = wait_for_version(three, 2)
    for info in infos:
        assets = info["assets"]
        assert isinstance(assets, list) and "EUR" in [asset["code"] for asset in assets]
        assert info["min_allowed_lot_size"] == 5_000
    assert len(converged_state_hashes(three)) == 1

    again = post_update(three, update, signatures)
    assert again["status"] == 400 and "version" in str(again["description"]), again


def test_alpha_restarts_with_the_updated_settings(three: Cluster) -> None:
    update = next_update(three, "GBP")
    version = update.settings.version
    keys = [node.keypair for node in three.nodes[:2]]
    cid = three.constellation_id()
    answer = post_update(three, update, [update_sign(update, key, cid) for key in keys])
    assert answer["status"] == 200, answer
    # Killed at once: the new settings may be recorded above the last snapshot.
    three.kill_process(three.alpha, "engine")
    restarted_ms = time.time_ns() // 1_000_000
    three.start_process(three.alpha, "engine")
    wait_for_restart(three, restarted_ms, "Ready", 90)
    wait_for_version(three, version)
    assert len(converged_state_hashes(three)) == 1


class AdminSession:
    """A browser-like session on a node's admin: cookies, CSRF token, form posts."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str) -> str:
        """Returns the page at `path` as text, entities unescaped."""
        with self.opener.open(self.base_url + path, timeout=60) as response:
            return html.unescape(response.read().decode())

    def post(self, path: str, fields: dict[str, str]) -> tuple[str, str]:
        """Posts a form (following the redirect); returns (final URL, page text)."""
        token = next(c.value for c in self.cookies if c.name == "csrftoken")
        data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": token}).encode()
        with self.opener.open(self.base_url + path, data=data, timeout=60) as response:
            return response.geturl(), html.unescape(response.read().decode())

    def login(self, username: str, password: str) -> None:
        """Logs in through the admin's login form."""
        self.get("/admin/login/")
        url, _ = self.post(
            "/admin/login/?next=/admin/", {"username": username, "password": password}
        )
        assert url.endswith("/admin/"), url


def admin_login(cluster: Cluster) -> AdminSession:
    """Creates a superuser on alpha and returns a session logged in as it."""
    cluster.manage(
        cluster.alpha,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "User.objects.create_superuser('operator', '', 'operator-password')",
    )
    admin = AdminSession(cluster.alpha.url)
    admin.login("operator", "operator-password")
    return admin


def admin_draft(admin: AdminSession, suspend: str) -> tuple[str, str]:
    """Drafts the settings in force with `suspend` suspended through the admin form;
    returns the draft's admin path and the base64 bytes to sign the page shows."""
    form = admin.get("/admin/quanta/settingsdraft/add/")
    textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", form, re.S)
    assert textarea is not None
    document = json.loads(textarea[1])
    for asset in document["assets"]:
        asset["is_suspended"] = asset["code"] == suspend
    url, page = admin.post("/admin/quanta/settingsdraft/add/", {"document": json.dumps(document)})
    message = re.search(r'<textarea id="message"[^>]*>(.*?)</textarea>', page, re.S)
    assert message is not None, page[-2000:]
    return urllib.parse.urlparse(url).path, message[1].strip()


def test_operator_updates_through_the_admin(three: Cluster) -> None:
    admin = admin_login(three)
    version = int(str(three.info()["settings_version"])) + 1
    draft_path, message = admin_draft(admin, "XLM")

    line = three.manage(three.nodes[1], "sign_settings_update", "--message", message)
    _, page = admin.post(draft_path, {"action": "sign", "signature": line.splitlines()[-1]})
    assert "1 of 3 signed, 2 needed" in page, page[-2000:]
    _, page = admin.post(draft_path, {"action": "submit"})
    assert "2 of 3 signatures needed, 1 present" in page

    draft_id = draft_path.rstrip("/").split("/")[-2]
    secret = three.nodes[2].keypair.secret
    three.manage(
        three.alpha, "sign_settings_update", "--draft", draft_id, "--add", "--secret", secret
    )
    _, page = admin.post(draft_path, {"action": "submit"})
    assert f"Settings v{version} are in force from apex" in page, page[-3000:]
    for info in wait_for_version(three, version):
        assets = info["assets"]
        assert isinstance(assets, list)
        assert [a["code"] for a in assets if a["is_suspended"]] == ["XLM"], info
    assert len(converged_state_hashes(three)) == 1
    assert "constellation_quantum" in admin.get("/admin/quanta/quantumrecord/?kind=32")


def post_settings(cluster: Cluster, settings: ConstellationSettings) -> None:
    """Signs `settings` as the next update with two nodes' keys, posts it, waits for it on
    every node."""
    update = ConstellationUpdate(int(time.time()), settings)
    cid = cluster.constellation_id()
    keys = [node.keypair for node in cluster.nodes[:2]]
    answer = post_update(cluster, update, [update_sign(update, key, cid) for key in keys])
    assert answer["status"] == 200, answer
    wait_for_version(cluster, settings.version)


def one_apex(cluster: Cluster, timeout_s: float = 30) -> int:
    """Waits until every node's info shows one apex, equal to its snapshot's; returns it."""
    deadline = time.monotonic() + timeout_s
    while True:
        infos = [cluster.info(node) for node in cluster.nodes]
        apexes = {info["apex"] for info in infos} | {info.get("snapshot_apex") for info in infos}
        if len(apexes) == 1:
            return int(str(apexes.pop()))
        if time.monotonic() > deadline:
            raise TimeoutError(f"the nodes stand at different apexes: {infos}")
        time.sleep(0.2)


def test_a_scheduled_halt_stops_every_node_at_one_apex_and_an_update_resumes(
    three: Cluster,
) -> None:
    async def scenario() -> None:
        alice, bob = await funded_pair(three)
        current = settings_from_json(three.info())
        halt = int(str(three.info()["apex"])) + 1  # the update's own apex, or below it
        await asyncio.to_thread(
            post_settings,
            three,
            dataclasses.replace(current, version=current.version + 1, halt_after_apex=halt),
        )
        refused = await alice.pay(bob.public_key, "USD", UNIT)
        assert refused.status == 450, (refused.status, refused.description)
        assert "halted after apex" in refused.description, refused.description
        # Every node stands at the same apex, the halt's update the last quantum: the apex a
        # node's info shows is its published status, which may trail its snapshot briefly,
        # so wait (bounded) for one apex everywhere; a further request moves none of them.
        assert len(await asyncio.to_thread(converged_state_hashes, three)) == 1
        halted_at = await asyncio.to_thread(one_apex, three)
        again = await alice.pay(bob.public_key, "USD", UNIT)
        assert again.status == 450, (again.status, again.description)
        assert await asyncio.to_thread(one_apex, three) == halted_at

        await asyncio.to_thread(
            post_settings,
            three,
            dataclasses.replace(current, version=current.version + 2, halt_after_apex=0),
        )
        resumed = await alice.pay(bob.public_key, "USD", UNIT)
        assert resumed.ok, resumed.description
        assert await resumed.wait_final(10)
        await alice.close()
        await bob.close()

    run(scenario())
