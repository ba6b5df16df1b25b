"""The admin login is throttled per address.

Goal: after 5 failed logins from one address, that address is refused (429) even with the
right password, while another address still logs in; a success clears the count. Before,
nothing limited guessing. Method: Django's test client against the real admin, with
REMOTE_ADDR set per request.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # noqa: S105 (a test user's)


@pytest.fixture
def operator() -> User:
    cache.clear()
    return User.objects.create_superuser("operator", "op@localhost", PASSWORD)


def login(address: str, password: str) -> int:
    client = Client(REMOTE_ADDR=address)
    response = client.post(
        "/admin/login/", {"username": "operator", "password": password, "next": "/admin/"}
    )
    return response.status_code


def test_five_failures_then_429_even_with_the_right_password(operator: User) -> None:
    assert [login("10.0.0.9", "guess") for _ in range(5)] == [200] * 5  # the form again
    assert login("10.0.0.9", PASSWORD) == 429
    assert login("10.0.0.10", PASSWORD) == 302  # another address is not affected


def test_a_success_clears_the_failures(operator: User) -> None:
    for _ in range(4):
        login("10.0.0.11", "guess")
    assert login("10.0.0.11", PASSWORD) == 302
    assert [login("10.0.0.11", "guess") for _ in range(5)] == [200] * 5
