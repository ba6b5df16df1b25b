"""HTTP(S) requests of the harness, the tests and the benchmarks, with the trust store read at
each request.

Why: urllib's module-level opener (what `urllib.request.urlopen` uses without a context) makes
its TLS context once, at the process's first request, from the trust store of that moment. A
test that trusts a CA later through SSL_CERT_FILE (the deployment test: nodes on TLS only,
certificates of a test CA) was then never trusted in a pytest process that had fetched
anything before it, and each HTTPS request failed certificate verification. So an HTTPS
request here gets a context made now (`ssl.create_default_context` reads SSL_CERT_FILE and
SSL_CERT_DIR as they are); plain HTTP needs none.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.request


def urlopen(target: str | urllib.request.Request, timeout: float) -> http.client.HTTPResponse:
    """Opens `target` (a URL or a request) like `urllib.request.urlopen`, trusting the CAs
    the environment names now; raises what urllib raises."""
    url = target.full_url if isinstance(target, urllib.request.Request) else target
    context = ssl.create_default_context() if url.startswith("https:") else None
    response: http.client.HTTPResponse = urllib.request.urlopen(
        target, timeout=timeout, context=context
    )
    return response
