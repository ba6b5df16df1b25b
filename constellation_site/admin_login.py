"""The admin's login, throttled per address: a few failed attempts, then a pause.

Why: the admin signs settings drafts and shows every account; its login is a password form on
the node's public port, and nothing limited how fast one could guess. After FAILURES_MAX
failed logins from one address within WINDOW_S, that address gets 429 for the rest of the
window, whatever it sends (a correct password included). A successful login clears its count.
Counts live in the process's cache (one web process per node).
"""

from __future__ import annotations

from django.contrib import admin
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from quanta.web_metrics import RefusalCause, refused

FAILURES_MAX = 5
WINDOW_S = 300


def _key(request: HttpRequest) -> str:
    return f"admin-login-failures:{request.META.get('REMOTE_ADDR', 'unknown')}"


def throttled_login(
    request: HttpRequest, extra_context: dict[str, object] | None = None
) -> HttpResponse:
    """Django admin's login view, refusing an address with too many recent failures."""
    key = _key(request)
    if request.method == "POST" and cache.get(key, 0) >= FAILURES_MAX:
        minutes = WINDOW_S // 60
        refused(RefusalCause.ADMIN_LOGIN)
        return HttpResponse(
            f"Too many failed logins from this address: try again in {minutes} minutes.",
            status=429,
            content_type="text/plain",
        )
    response = admin.site.login(request, extra_context)
    if request.method == "POST":
        if request.user.is_authenticated:
            cache.delete(key)
        elif cache.add(key, 1, WINDOW_S) is False:
            cache.incr(key)
    return response
