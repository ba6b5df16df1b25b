"""The trader's page and its static files are served by the node itself.

Method: Django's test client (DEBUG is off in the test settings, as on a node started with
daphne), checking the page, the ES modules it loads and the node-state endpoint.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.test.utils import override_settings

from constellation_site import views as site_views
from quanta.core.testing import default_settings, keypair
from quanta.core.xdr.codec import encode
from quanta.models import SettingsRecord


@pytest.mark.django_db
@override_settings(DEMO_MODE=True)
def test_the_page_loads_its_module_and_shows_the_faucet_in_demo_mode() -> None:
    """The page references app.js as an ES module and tells it that demo mode is on."""
    response = Client().get("/")
    assert response.status_code == 200
    text = response.content.decode()
    assert '<script type="module" src="/static/js/app.js">' in text
    assert 'data-demo="1"' in text
    assert "only in this browser" in text


@pytest.mark.django_db
def test_the_page_has_the_proof_of_reserves_panel_and_its_module() -> None:
    """The panel is self-contained: its own module fills its own table."""
    text = Client().get("/").content.decode()
    assert '<script type="module" src="/static/js/reserves.js">' in text
    assert '<section id="reserves-panel"' in text and '<table id="reserves">' in text


@pytest.mark.django_db
@override_settings(DEMO_MODE=False)
def test_the_page_hides_the_faucet_outside_demo_mode() -> None:
    """Outside demo mode the page says so, and app.js keeps the faucet panel hidden."""
    assert 'data-demo="0"' in Client().get("/").content.decode()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/js/app.js", "javascript"),
        ("/static/js/schema.js", "javascript"),
        ("/static/js/reserves.js", "javascript"),
        ("/static/css/app.css", "text/css"),
    ],
)
def test_static_files_are_served_without_debug(path: str, content_type: str) -> None:
    """ES modules need a JavaScript MIME type or the browser refuses to run them."""
    response = Client().get(path)
    assert response.status_code == 200
    assert content_type in response["Content-Type"]


def test_a_missing_static_file_is_a_404() -> None:
    """Unknown paths and attempts to leave the static folders find nothing."""
    client = Client(raise_request_exception=False)
    assert client.get("/static/js/nope.js").status_code == 404
    # Django answers a path that escapes the static folder as a suspicious operation (400).
    assert client.get("/static/../manage.py").status_code == 400


@pytest.mark.django_db
def test_nodes_lists_every_auditor_with_a_state() -> None:
    """Each node of the settings is listed; an unreachable one says so instead of failing."""
    keys = [keypair(i) for i in range(2)]
    settings = default_settings(keys, addresses=["http://127.0.0.1:9", "ws://nowhere"])
    SettingsRecord.objects.create(version=1, apex=1, data=encode(settings))
    site_views._nodes_cache.clear()  # an earlier test's answer may still be cached
    response = Client().get("/api/constellation/nodes")
    assert response["Access-Control-Allow-Origin"] == "*"  # read by a page that followed
    nodes = response.json()["nodes"]
    assert [node["public_key"] for node in nodes] == [k.public_key_strkey for k in keys]
    assert [node["is_alpha"] for node in nodes] == [True, False]
    assert nodes[0]["state"] == "unreachable"
    assert nodes[1]["state"] == "unknown"
