"""Production-safe defaults: no known secret key outside debug, security headers on the page.

Goal: a node started without DEBUG never signs admin sessions with a key everyone knows, and
its page is served with a Content-Security-Policy that lets it load only its own modules and
talk only to its own node and the nodes its settings name (to follow an alpha replacement).
Method: the settings' `secret_key` rule with each source; the
test client's response headers for the page.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from constellation_site.settings.env import DEV_SECRET_KEY, env_secret, secret_key
from quanta.core.testing import default_settings, keypair
from quanta.core.xdr.codec import encode
from quanta.models import SettingsRecord

NODE_SECRET = "SBQWY3DNPFWGSZTFNRSWC3TFEBQWYZLTBI"  # any seed text: only its hash is used


def test_an_explicit_key_wins() -> None:
    assert secret_key("given", NODE_SECRET, debug=False) == "given"


def test_a_key_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "key"
    path.write_text("from-a-file\n")
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    monkeypatch.setenv("DJANGO_SECRET_KEY_FILE", str(path))
    key = secret_key(env_secret("DJANGO_SECRET_KEY"), NODE_SECRET, debug=False)
    assert key == "from-a-file"


def test_a_missing_or_empty_key_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    monkeypatch.setenv("DJANGO_SECRET_KEY_FILE", str(tmp_path / "absent"))
    with pytest.raises(ImproperlyConfigured, match="cannot read"):
        env_secret("DJANGO_SECRET_KEY")
    (tmp_path / "empty").write_text("\n")
    monkeypatch.setenv("DJANGO_SECRET_KEY_FILE", str(tmp_path / "empty"))
    with pytest.raises(ImproperlyConfigured, match="empty"):
        env_secret("DJANGO_SECRET_KEY")


def test_a_node_derives_its_key_from_its_own_secret() -> None:
    derived = secret_key("", NODE_SECRET, debug=False)
    assert derived == secret_key("", NODE_SECRET, debug=True)
    assert derived not in {DEV_SECRET_KEY, "", NODE_SECRET} and len(derived) == 64
    assert derived != secret_key("", NODE_SECRET + "A", debug=False)


def test_the_known_development_key_exists_only_in_debug() -> None:
    assert secret_key("", "", debug=True) == DEV_SECRET_KEY
    assert secret_key("", "", debug=False) == ""


@pytest.mark.django_db
def test_the_page_is_served_with_a_strict_content_security_policy() -> None:
    response = Client().get("/")
    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_secret_comes_from_its_variable_or_the_file_its_file_variable_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.delenv("X_SECRET_FILE", raising=False)
    assert env_secret("X_SECRET") == ""
    path = tmp_path / "secret"
    path.write_text("S-from-file\n")
    monkeypatch.setenv("X_SECRET_FILE", str(path))
    assert env_secret("X_SECRET") == "S-from-file"
    monkeypatch.setenv("X_SECRET", "S-from-env")
    assert env_secret("X_SECRET") == "S-from-env"
    monkeypatch.delenv("X_SECRET")
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "absent"))
    with pytest.raises(ImproperlyConfigured, match="cannot read X_SECRET_FILE"):
        env_secret("X_SECRET")


def test_a_database_url_may_name_a_unix_socket_directory() -> None:
    """A node in a network namespace of its own reaches PostgreSQL by its Unix socket."""
    from constellation_site.settings.env import database_from_url

    local = database_from_url(
        "postgres://postgres@/node1?host=/var/run/postgresql", pool_max=2, pool_timeout_s=1
    )
    assert (local["HOST"], local["NAME"], local["USER"]) == (
        "/var/run/postgresql",
        "node1",
        "postgres",
    )
    remote = database_from_url("postgres://u:p@db.example:5433/n", pool_max=2, pool_timeout_s=1)
    assert (remote["HOST"], remote["PORT"], remote["PASSWORD"]) == ("db.example", "5433", "p")


@pytest.mark.django_db
def test_the_page_may_reach_the_nodes_its_settings_name_and_no_others() -> None:
    keys = [keypair(i) for i in range(3)]
    addresses = ["http://127.0.0.1:8000", "https://b.example:8443", "not an address"]
    settings = default_settings(keys, addresses=addresses)
    SettingsRecord.objects.create(version=1, apex=1, data=encode(settings))
    policy = Client().get("/").headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["connect-src"].split() == [
        "'self'",
        "http://127.0.0.1:8000",
        "ws://127.0.0.1:8000",
        "https://b.example:8443",
        "wss://b.example:8443",
    ]
    assert directives["script-src"] == "'self'"
