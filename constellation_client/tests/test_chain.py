"""Goal: the client derives the keys it trusts only from a settings chain that leads from its
pinned constellation id, and says exactly where a chain breaks.

Method: chains of real majority-signed `ConstellationUpdate`s (deterministic keys, settings
from `quanta.core.testing`), verified whole, extended from a head, and tampered with: a wrong
pin, too few signers, signers of the wrong set, a version skip, a rotation. Pages of the HTTP
form are parsed from JSON built here, and the fetch loop runs against a stubbed page source.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

import pytest

from constellation_client import chain
from constellation_client.chain import (
    ChainError,
    ChainPage,
    fetch_envelopes,
    parse_chain_page,
    settings_chain_url,
    verify_chain,
)
from quanta.core.keys import KeyPair
from quanta.core.testing import default_settings, keypair, settings_quantum
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import ConstellationMessageEnvelope, ConstellationSettings

OLD = [keypair(1), keypair(2), keypair(3)]
NEW = [keypair(1), keypair(4), keypair(5)]
GENESIS = default_settings(OLD)
PIN = hashlib.sha256(encode(GENESIS)).digest()  # The spec's formula, computed here.


def signed(
    settings: ConstellationSettings,
    signers: Sequence[KeyPair],
    constellation_id: bytes | None = PIN,
) -> ConstellationMessageEnvelope:
    """Returns the update envelope of `settings` signed by `signers` for `constellation_id`
    (None: as a genesis, under the id of `settings` itself)."""
    if settings.version == 1 and constellation_id == PIN:
        constellation_id = None
    return settings_quantum(settings, signers, constellation_id=constellation_id).update


def genesis(signers: Sequence[KeyPair] = OLD) -> ConstellationMessageEnvelope:
    return signed(GENESIS, signers)


def test_genesis_signed_by_its_auditors_gives_the_trusted_keys() -> None:
    head = verify_chain(PIN, [genesis(OLD[:2])])
    assert head.constellation_id == PIN and head.version == 1
    assert head.auditor_keys == tuple(pair.public_key for pair in OLD)
    assert head.alpha_key == OLD[0].public_key and head.quote_asset == "USD"


def test_a_wrong_pin_is_refused_naming_both_ids() -> None:
    other = hashlib.sha256(b"another constellation").digest()
    with pytest.raises(ChainError) as raised:
        verify_chain(other, [genesis()])
    assert str(raised.value) == (
        f"constellation id mismatch: pinned {other.hex()[:8]}… but the node's genesis "
        f"settings hash to {PIN.hex()[:8]}…"
    )


def test_a_genesis_without_a_majority_of_its_auditors_is_refused() -> None:
    with pytest.raises(ChainError, match="version 1: signed by 1 of 3 listed auditors, 2 required"):
        verify_chain(PIN, [genesis(OLD[:1])])


def test_signatures_made_for_another_constellation_do_not_count() -> None:
    elsewhere = signed(GENESIS, OLD, constellation_id=bytes(32))
    with pytest.raises(ChainError, match="signed by 0 of 3"):
        verify_chain(PIN, [elsewhere])


def test_a_chain_must_start_at_version_1() -> None:
    with pytest.raises(ChainError, match="must start at version 1"):
        verify_chain(PIN, [signed(default_settings(OLD, version=2), OLD)])


def test_an_empty_chain_is_refused() -> None:
    with pytest.raises(ChainError, match="no settings chain"):
        verify_chain(PIN, [])


def test_a_rotation_signed_by_the_previous_majority_moves_the_trusted_keys() -> None:
    rotated = signed(default_settings(NEW, version=2), OLD[:2])
    head = verify_chain(PIN, [genesis(), rotated])
    assert head.version == 2 and head.auditor_keys == tuple(pair.public_key for pair in NEW)
    # Version 3 must now be signed by the new set, not the old one.
    by_new = signed(default_settings(NEW, version=3), NEW[1:])
    assert verify_chain(PIN, [genesis(), rotated, by_new]).version == 3
    by_old = signed(default_settings(NEW, version=3), OLD[1:])
    with pytest.raises(
        ChainError,
        match="breaks at version 3: signed by 0 of 3 previous auditors, 2 required",
    ):
        verify_chain(PIN, [genesis(), rotated, by_old])


def test_a_link_signed_by_too_few_previous_auditors_breaks_the_chain() -> None:
    """The new auditors signing their own promotion is not enough: the previous set decides."""
    weak = signed(default_settings(NEW, version=2), [OLD[0], NEW[1], NEW[2]])
    with pytest.raises(ChainError) as raised:
        verify_chain(PIN, [genesis(), weak])
    assert str(raised.value) == (
        "the settings chain breaks at version 2: signed by 1 of 3 previous auditors, 2 required"
    )


def test_a_version_skip_breaks_the_chain() -> None:
    skip = signed(default_settings(OLD, version=3), OLD)
    with pytest.raises(ChainError, match="breaks after version 1: the next update has version 3"):
        verify_chain(PIN, [genesis(), skip])


def test_settings_the_nodes_would_refuse_break_the_chain() -> None:
    bad = default_settings(OLD, version=2, assets=("XLM", "XLM"))
    with pytest.raises(ChainError, match="breaks at version 2: duplicate asset code"):
        verify_chain(PIN, [genesis(), signed(bad, OLD)])


def test_a_head_is_extended_by_the_updates_after_it() -> None:
    head = verify_chain(PIN, [genesis()])
    rotated = signed(default_settings(NEW, version=2), OLD)
    extended = verify_chain(PIN, [rotated], head)
    assert extended.version == 2 and extended.alpha_key == NEW[0].public_key
    assert verify_chain(PIN, [], extended) is extended


# --- pages ---------------------------------------------------------------------------------


def page_json(envelopes: Sequence[ConstellationMessageEnvelope], more: bool = False) -> Any:
    """Returns a page as the node serves it."""
    updates = [
        {
            "version": envelope.message.settings.version,  # type: ignore[union-attr]
            "apex": index + 1,
            "envelope": base64.b64encode(encode(envelope)).decode(),
        }
        for index, envelope in enumerate(envelopes)
    ]
    return {"constellation_id": PIN.hex(), "updates": updates, "more": more}


def test_a_page_decodes_to_its_envelopes() -> None:
    page = parse_chain_page(page_json([genesis()], more=False), 0)
    assert page == ChainPage((genesis(),), False, PIN.hex())


def test_a_page_over_the_limit_is_refused() -> None:
    data = page_json([genesis()])
    data["updates"] = data["updates"] * 65
    with pytest.raises(ChainError, match="page of 65 updates exceeds 64"):
        parse_chain_page(data, 0)


def test_a_declared_version_must_match_the_envelope() -> None:
    data = page_json([genesis()])
    data["updates"][0]["version"] = 7
    with pytest.raises(ChainError, match="declared as version 7 holds version 1"):
        parse_chain_page(data, 0)


@pytest.mark.parametrize(
    "data",
    [[], {"updates": "x"}, {"updates": [{"version": 1}]}, {"updates": [], "more": True}],
    ids=["not an object", "updates not a list", "no envelope", "more without updates"],
)
def test_malformed_pages_are_refused(data: Any) -> None:
    with pytest.raises(ChainError, match="malformed"):
        parse_chain_page(data, 0)


def test_fetching_follows_more_and_refuses_an_endless_chain(monkeypatch: Any) -> None:
    asked: list[int] = []

    def endless(info_url: str, after: int, timeout_s: float) -> ChainPage:
        asked.append(after)
        settings = default_settings(OLD, version=after + 1)
        return ChainPage((signed(settings, OLD),), True, None)

    monkeypatch.setattr(chain, "fetch_chain_page", endless)
    with pytest.raises(ChainError, match="longer than 5 updates: refused"):
        fetch_envelopes("http://node/api/constellation/info", 0, 1.0, updates_max=5)
    assert asked == [0, 1, 2, 3, 4, 5]


def test_the_chain_url_sits_beside_the_info_url() -> None:
    url = settings_chain_url("https://h/prefix/api/constellation/info", 3)
    assert url == "https://h/prefix/api/constellation/settings-chain?after=3"
