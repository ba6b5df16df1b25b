"""What an auditor signs, and when: the quantum time rule and "cannot confirm yet".

Goal: a timestamp before the previous quantum's makes the auditor Failed; one more than the
drift bound ahead of its clock is signed only once its clock caught up; an auditor whose
provider has not seen alpha's deposit yet keeps the quantum (and those after it), signs
nothing, is never Failed for that, and signs all of them in order once its provider sees it;
a provider that contradicts alpha still makes it Failed. No database.
"""

from __future__ import annotations

import pytest

from quanta.core.alpha import AlphaNode
from quanta.core.auditor import AuditorNode
from quanta.core.confirmation import (
    QUANTUM_CLOCK_DRIFT_MAX_MS,
    RETRY_FIRST_MS,
    RETRY_MAX_MS,
    RetryBackoff,
    quantum_time_check,
)
from quanta.core.engine import Engine, QuantumMismatch
from quanta.core.pending import PendingUpdates
from quanta.core.status import BadRequest, NotYetConfirmed
from quanta.core.testing import default_settings, deposit_quantum, keypair, settings_quantum
from quanta.core.xdr.schema import DepositQuantum, NodeState, SignedQuantum

NODES = [keypair(230), keypair(231), keypair(232)]
CLIENT, OTHER = keypair(233), keypair(234)
UNIT = 10_000_000
NOW = 1_800_000_000_000
DRIFT = QUANTUM_CLOCK_DRIFT_MAX_MS


# --- the time rule ---------------------------------------------------------------------------


def test_a_timestamp_equal_to_the_previous_one_and_one_at_the_drift_bound_are_signed() -> None:
    quantum_time_check(5, NOW, NOW, NOW)
    quantum_time_check(5, NOW + DRIFT, NOW, NOW)


def test_a_timestamp_one_ms_before_the_previous_one_contradicts_the_chain() -> None:
    with pytest.raises(QuantumMismatch, match="quantum 5 goes back in time"):
        quantum_time_check(5, NOW - 1, NOW, NOW)


def test_one_ms_past_the_drift_bound_waits_exactly_that_long() -> None:
    with pytest.raises(NotYetConfirmed, match="ahead of this node's clock") as waiting:
        quantum_time_check(5, NOW + DRIFT + 1, NOW, NOW)
    assert waiting.value.retry_after_ms == 1


def test_an_old_timestamp_is_signed_so_history_can_be_replayed() -> None:
    quantum_time_check(5, 1_000, 1_000, NOW)


def test_retries_double_up_to_the_bound_and_follow_a_known_cause() -> None:
    retry = RetryBackoff()
    delays = [retry.wait(0) for _ in range(12)]
    assert delays[:3] == [RETRY_FIRST_MS, 2 * RETRY_FIRST_MS, 4 * RETRY_FIRST_MS]
    assert max(delays) == delays[-1] == RETRY_MAX_MS
    assert not retry.due(RETRY_MAX_MS - 1) and retry.due(RETRY_MAX_MS)
    assert retry.wait(0, hint_ms=1) == RETRY_FIRST_MS
    assert retry.wait(0, hint_ms=10 * RETRY_MAX_MS) == RETRY_MAX_MS
    retry.reset()
    assert retry.due(0) and retry.wait(0) == RETRY_FIRST_MS


# --- an auditor that cannot confirm yet --------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now_ms = NOW

    def __call__(self) -> int:
        return self.now_ms


class _LaggingProvider:
    """An auditor's view of the vault: sees alpha's notifications only once told to."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.contradicts = False
        self.checks = 0

    def __call__(self, body: DepositQuantum) -> None:
        self.checks += 1
        if self.contradicts:
            raise BadRequest("the notification does not match the vault")
        if body.cursor not in self.seen:
            raise NotYetConfirmed(f"has not seen the vault up to {body.cursor}")


def _nodes(clock: _Clock, provider: _LaggingProvider) -> tuple[AlphaNode, AuditorNode]:
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, NOW)
    auditor = AuditorNode(
        NODES[1], Engine(validate_deposit=provider), PendingUpdates(), clock_ms=clock
    )
    auditor.handle_batch(tuple(alpha.take_outgoing()), alpha.engine.state.apex)
    assert auditor.status.state == NodeState.READY
    return alpha, auditor


def _two_deposits(alpha: AlphaNode) -> tuple[SignedQuantum, ...]:
    alpha.notify(deposit_quantum(1, [(CLIENT, "USD", 10 * UNIT)]), NOW)
    alpha.notify(deposit_quantum(2, [(OTHER, "USD", 20 * UNIT)]), NOW + 1)
    return tuple(alpha.take_outgoing())


def test_a_lagging_provider_holds_the_quanta_and_they_are_signed_once_it_sees_them() -> None:
    clock, provider = _Clock(), _LaggingProvider()
    alpha, auditor = _nodes(clock, provider)
    quanta = _two_deposits(alpha)

    outcome = auditor.handle_batch(quanta, alpha.engine.state.apex)
    assert outcome.results == [] and auditor.apex == 1
    assert outcome.retry_after_ms == RETRY_FIRST_MS
    assert auditor.status.state == NodeState.CHASING
    assert "cannot confirm yet" in auditor.status.reason and "up to 1" in auditor.status.reason

    # Before the delay, neither a retry nor alpha's resent batch asks the provider again.
    checks = provider.checks
    assert auditor.retry_held().results == []
    assert auditor.handle_batch(quanta, alpha.engine.state.apex).results == []
    assert provider.checks == checks

    provider.seen.add("1")
    clock.now_ms += RETRY_FIRST_MS
    partly = auditor.retry_held()
    assert [r.apex for r in partly.results] == [2] and auditor.apex == 2
    assert partly.retry_after_ms == RETRY_FIRST_MS  # Reset: quantum 3 waits afresh.

    provider.seen.add("2")
    clock.now_ms += RETRY_FIRST_MS
    rest = auditor.retry_held()
    assert [r.apex for r in rest.results] == [3] and rest.retry_after_ms is None
    assert auditor.status.state == NodeState.READY
    assert auditor.engine.state.state_hash() == alpha.engine.state.state_hash()


def test_a_provider_that_contradicts_alpha_makes_the_auditor_failed() -> None:
    clock, provider = _Clock(), _LaggingProvider()
    alpha, auditor = _nodes(clock, provider)
    quanta = _two_deposits(alpha)
    auditor.handle_batch(quanta, alpha.engine.state.apex)
    provider.contradicts = True
    clock.now_ms += RETRY_FIRST_MS
    assert auditor.retry_held().results == []
    assert auditor.status.state == NodeState.FAILED
    assert "does not match the vault" in auditor.status.reason
    assert not auditor.held


def test_a_quantum_ahead_of_the_auditors_clock_is_signed_once_the_clock_caught_up() -> None:
    clock, provider = _Clock(), _LaggingProvider()
    provider.seen.add("1")
    alpha, auditor = _nodes(clock, provider)
    alpha.notify(deposit_quantum(1, [(CLIENT, "USD", 10 * UNIT)]), NOW + DRIFT + 1_000)
    quanta = tuple(alpha.take_outgoing())

    outcome = auditor.handle_batch(quanta, alpha.engine.state.apex)
    assert outcome.results == [] and outcome.retry_after_ms == 1_000
    assert "ahead of this node's clock" in auditor.status.reason
    clock.now_ms += 1_000
    assert [r.apex for r in auditor.retry_held().results] == [2]
    assert auditor.status.state == NodeState.READY


def test_a_quantum_stamped_before_the_previous_one_makes_the_auditor_failed() -> None:
    clock, provider = _Clock(), _LaggingProvider()
    provider.seen.update({"1", "2"})
    alpha, auditor = _nodes(clock, provider)
    alpha.notify(deposit_quantum(1, [(CLIENT, "USD", 10 * UNIT)]), NOW + 5_000)
    alpha.engine.last_timestamp_ms = 0  # A dishonest alpha turns its clock back.
    alpha.notify(deposit_quantum(2, [(OTHER, "USD", 20 * UNIT)]), NOW)
    quanta = tuple(alpha.take_outgoing())
    assert [q.quantum.timestamp for q in quanta] == [NOW + 5_000, NOW]

    outcome = auditor.handle_batch(quanta, alpha.engine.state.apex)
    assert [r.apex for r in outcome.results] == [2]
    assert auditor.status.state == NodeState.FAILED
    assert "quantum 3 goes back in time" in auditor.status.reason
