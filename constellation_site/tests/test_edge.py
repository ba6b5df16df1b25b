"""The edge limits' rules: which route a handshake belongs to, and connections per address.

Goal: the herald's large batches are allowed only on its own path, every other path gets the
client limit, and the per-address cap admits exactly its number and frees a place on close.
Method: the pure rules of `constellation_site.edge` (the server applies them in daphne).
"""

from __future__ import annotations

from constellation_site.edge import ConnectionCaps, route_of, routes
from quanta.core.xdr.schema import Limits

CLIENT, HERALD = routes(3, 1)


def test_only_the_herald_path_takes_batches() -> None:
    assert route_of("/ws/herald/", CLIENT, HERALD) is HERALD
    assert route_of("/ws/herald", CLIENT, HERALD) is HERALD
    for path in ("/ws/", "/ws/chronicler/", "/ws/herald/x", "/anything"):
        assert route_of(path, CLIENT, HERALD) is CLIENT
    assert CLIENT.message_bytes_max < 2 * Limits.ENVELOPE_BYTES_MAX
    assert HERALD.message_bytes_max > Limits.BATCH_BYTES_MAX


def test_an_address_gets_its_cap_per_route_and_a_place_back_on_close() -> None:
    caps = ConnectionCaps()
    assert [caps.admit(CLIENT, "10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert caps.admit(CLIENT, "10.0.0.2")  # another address has its own room
    assert caps.admit(HERALD, "10.0.0.1") and not caps.admit(HERALD, "10.0.0.1")
    caps.release(CLIENT, "10.0.0.1")
    assert caps.admit(CLIENT, "10.0.0.1") and not caps.admit(CLIENT, "10.0.0.1")
    for _ in range(3):
        caps.release(CLIENT, "10.0.0.1")
    assert ("client", "10.0.0.1") not in caps.open
