"""The vault's signers against the auditors in force, on the local ledger's real database.

Before: after any change of the auditors `vault_open` raised "a vault of other signers" in the
payout desk's `prepare`, which aborted every payout tick (and every expiry cancellation, of
every provider) for good. Now a vault of other signers is a mismatch the provider reports and
pays nothing out of, and the vault's signers change only by a rotation the old majority signs:
the removed keys can then no longer move the vault's funds, and the new ones can.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from payments.core.local_ledger import (
    LedgerRuleError,
    rotation_encode,
    rotation_transaction,
    transaction_encode,
    transaction_sign,
    withdrawal_transaction,
)
from payments.core.provider import PaymentSubmitError
from payments.core.rotation import local_rotation
from payments.payouts import PayoutDesk
from payments.providers.local_ledger.ledger import (
    faucet_deposit,
    ledger_balance,
    ledger_now_ms,
    vault_open,
    vault_rotate,
    vault_signers,
    vault_submit,
)
from payments.providers.local_ledger.provider import LocalLedgerProvider
from quanta.core.alpha import AlphaNode
from quanta.core.auditor import AuditorNode
from quanta.core.config import Config
from quanta.core.engine import Engine
from quanta.core.keys import KeyPair, encode_public_key
from quanta.core.pending import PendingUpdates
from quanta.core.processors.settings import ROTATION_TTL_MS, rotations_called_for
from quanta.core.status import InvalidState
from quanta.core.testing import default_settings, keypair, settings_quantum
from quanta.core.xdr.schema import (
    ConstellationQuantum,
    MessageEnvelope,
    NodeState,
    ProviderAsset,
    ProviderSettings,
    Signature,
    VaultRotationTx,
    WithdrawalQuantum,
    WithdrawalRequest,
)
from quanta.node.providers import (
    NodeProviders,
    rotation_signer,
    rotation_validator,
    transaction_signer,
)

pytestmark = pytest.mark.django_db(databases=["default", "ledger"])

OLD = [keypair(i) for i in range(3)]
NEW = [OLD[0], keypair(40), keypair(41)]  # one of three replaced...
NEWER = [OLD[0], keypair(42), keypair(43)]  # ...then two of three
SETTINGS = ProviderSettings(
    "local", "vault", "VAULT", "0", (ProviderAsset("USD", "USD", False),), 0
)
PAYER = keypair(20).public_key_strkey
DEST = keypair(21).public_key_strkey


def _keys(nodes: list[KeyPair]) -> tuple[bytes, ...]:
    return tuple(k.public_key for k in nodes)


def _rotation(nodes: list[KeyPair], reference: str = "2") -> bytes:
    signers = [k.public_key_strkey for k in nodes]
    until = ledger_now_ms() + 60_000
    return rotation_encode(rotation_transaction("VAULT", signers, 2, reference, until))


def _payout(withdrawal_id: int, amount: int = 10) -> bytes:
    until = ledger_now_ms() + 60_000
    tx = withdrawal_transaction("VAULT", DEST, "USD", amount, withdrawal_id, until)
    return transaction_encode(tx)


def _signed(data: bytes, nodes: list[KeyPair]) -> list:  # type: ignore[type-arg]
    return [transaction_sign(data, k) for k in nodes]


def test_a_vault_of_other_signers_is_a_reported_mismatch_not_an_abort() -> None:
    vault_open("VAULT", _keys(OLD), 2)
    provider = LocalLedgerProvider(SETTINGS, NEW[1], _keys(NEW))
    provider.prepare()  # Raised "a vault of other signers" before, at every payout tick.
    assert provider.vault_mismatch is not None
    assert "are not the settings'" in provider.vault_mismatch
    request = WithdrawalRequest(1, OLD[0].public_key, 1, "local-vault", "USD", 5, DEST, 0)
    with pytest.raises(InvalidState, match="pays nothing out"):
        provider.build_withdrawal(7, ledger_now_ms(), request)
    with pytest.raises(InvalidState, match="refuses to sign"):
        provider.sign_withdrawal(_payout(7))


def test_the_old_majority_rotates_the_vault_and_only_the_new_set_moves_funds_after() -> None:
    vault_open("VAULT", _keys(OLD), 2)
    faucet_deposit(PAYER, "VAULT", "USD", 100)
    rotation = _rotation(NEW)
    with pytest.raises(LedgerRuleError, match="1 valid vault signatures, 2 needed"):
        vault_rotate(rotation, _signed(rotation, NEW))  # The new keys cannot take it over.
    vault_rotate(rotation, _signed(rotation, OLD[1:]))  # The old majority, the removed key too.
    assert vault_signers("VAULT") == (tuple(sorted(_keys(NEW), key=encode_public_key)), 2)
    with pytest.raises(LedgerRuleError, match="already applied"):
        vault_rotate(rotation, _signed(rotation, NEW[:2]))  # Once.
    removed = _payout(8)
    with pytest.raises(LedgerRuleError, match="1 valid vault signatures, 2 needed"):
        vault_submit(removed, _signed(removed, [OLD[0], OLD[1]]))  # OLD[1] was removed.
    paid = _payout(9)
    vault_submit(paid, _signed(paid, NEW[1:]))
    assert ledger_balance(DEST, "USD") == 10
    # Two of three next: the set of the first rotation signs the second.
    second = _rotation(NEWER, "3")
    vault_rotate(second, _signed(second, NEW[1:]))
    again = _payout(10)
    with pytest.raises(LedgerRuleError, match="valid vault signatures, 2 needed"):
        vault_submit(again, _signed(again, NEW[1:]))
    vault_submit(again, _signed(again, NEWER[1:]))
    assert ledger_balance(DEST, "USD") == 20
    assert ledger_balance("VAULT", "USD") == 80
    provider = LocalLedgerProvider(SETTINGS, NEWER[1], _keys(NEWER))
    provider.prepare()
    assert provider.vault_mismatch is None  # The vault answers to the set in force again.


def test_a_rotation_is_not_a_payment_and_an_expired_or_unsound_one_is_refused() -> None:
    vault_open("VAULT", _keys(OLD), 2)
    faucet_deposit(PAYER, "VAULT", "USD", 100)
    rotation = _rotation(NEW)
    with pytest.raises(LedgerRuleError):
        vault_submit(rotation, _signed(rotation, OLD))
    payout = _payout(11)
    with pytest.raises(LedgerRuleError, match="not a vault rotation"):
        vault_rotate(payout, _signed(payout, OLD))
    signers = [k.public_key_strkey for k in NEW]
    expired = rotation_encode(rotation_transaction("VAULT", signers, 2, "4", ledger_now_ms() - 1))
    with pytest.raises(LedgerRuleError, match="expired"):
        vault_rotate(expired, _signed(expired, OLD))
    for threshold in (0, 4):
        unsound = rotation_encode(
            rotation_transaction("VAULT", signers, threshold, "5", ledger_now_ms() + 60_000)
        )
        with pytest.raises(LedgerRuleError, match="threshold"):
            vault_rotate(unsound, _signed(unsound, OLD))
    assert vault_signers("VAULT") == (tuple(sorted(_keys(OLD), key=encode_public_key)), 2)


def test_a_node_reports_the_mismatch_and_its_signer_gives_no_signature() -> None:
    """What a node does with it (`quanta.node.providers`): at start and after every settings
    change it checks its vaults; the mismatch goes into its published status
    (`vault_mismatches` of /api/constellation/info) and its signer gives no signature."""
    vault_open("VAULT", _keys(OLD), 2)
    alpha = AlphaNode(NEW[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(NEW), NEW).update, 1_000)
    providers = NodeProviders(NEW[1], alpha.engine.state)
    assert providers.mismatches() == {}  # Nothing checked yet: nothing claimed.
    providers.check_vaults()
    assert list(providers.mismatches()) == ["local-vault"]
    request = WithdrawalRequest(1, OLD[0].public_key, 1, "local-vault", "USD", 5, DEST, 0)
    envelope = MessageEnvelope(request, Signature(OLD[0].public_key, b"\0" * 64))
    assert transaction_signer(providers)(WithdrawalQuantum(envelope, _payout(7))) is None


def test_a_mismatched_vault_is_checked_again_and_pays_once_rotated() -> None:
    vault_open("VAULT", _keys(OLD), 2)
    faucet_deposit(PAYER, "VAULT", "USD", 100)
    provider = LocalLedgerProvider(SETTINGS, NEW[0], _keys(NEW))
    provider.prepare()
    assert provider.vault_mismatch is not None
    assert not provider.needs_preparation()  # Not again before VAULT_RECHECK_MS.
    rotation = _rotation(NEW)
    vault_rotate(rotation, _signed(rotation, OLD[:2]))
    provider.VAULT_RECHECK_MS = 0
    assert provider.needs_preparation()
    provider.prepare()
    assert provider.vault_mismatch is None and not provider.needs_preparation()
    request = WithdrawalRequest(1, OLD[0].public_key, 1, "local-vault", "USD", 5, DEST, 0)
    transaction = provider.build_withdrawal(7, ledger_now_ms(), request)
    signatures = [provider.sign_withdrawal(transaction), transaction_sign(transaction, NEW[1])]
    provider.submit_withdrawal(transaction, signatures)
    assert ledger_balance(DEST, "USD") == 5


def test_the_vault_rotate_command_needs_a_majority_of_the_signers_in_force(tmp_path: Path) -> None:
    vault_open("VAULT", _keys(OLD), 2)
    files = []
    for index, node in enumerate(OLD):
        path = tmp_path / f"old{index}"
        path.write_text(node.secret)
        files += ["--sign-file", str(path)]
    new = [a for k in NEW for a in ("--signer", k.public_key_strkey)]
    with pytest.raises(CommandError, match="1 valid vault signatures, 2 needed"):
        call_command("vault_rotate", *new, *files[2:4], "--reference", "2")
    call_command("vault_rotate", *new, *files[2:6], "--reference", "2", stdout=io.StringIO())
    assert vault_signers("VAULT") == (tuple(sorted(_keys(NEW), key=encode_public_key)), 2)


# --- rotation as a constellation operation -------------------------------------------------


def _update(alpha: AlphaNode, auditors: list[KeyPair], signers: list[KeyPair]) -> None:
    current = alpha.engine.state.require_config()
    settings = dataclasses.replace(
        current.settings,
        version=current.settings.version + 1,
        auditors=default_settings(auditors).auditors,
    )
    envelope = settings_quantum(settings, signers, constellation_id=current.constellation_id)
    alpha.update_settings(envelope.update, ledger_now_ms())


def _constellation(
    auditors_keys: list[KeyPair],
) -> tuple[AlphaNode, PayoutDesk, NodeProviders, list[AuditorNode]]:
    """Alpha (its desk building the rotations) and auditors (their engines validating and
    their signers signing through their own providers), initialized with OLD."""
    vault_open("VAULT", _keys(OLD), 2)
    engine = Engine()
    providers = NodeProviders(OLD[0], engine.state)
    desk = PayoutDesk(providers.current, ledger_now_ms)
    alpha = AlphaNode(OLD[0], engine, PendingUpdates(), transactions=desk, rotations=desk)
    alpha.initialize(settings_quantum(default_settings(OLD), OLD).update, 1_000)
    auditors = []
    for key in auditors_keys:
        auditor_engine = Engine()
        own = NodeProviders(key, auditor_engine.state)
        auditor_engine.validate_rotation = rotation_validator(own)
        auditor = AuditorNode(
            key, auditor_engine, PendingUpdates(), sign_rotation=rotation_signer(own)
        )
        auditors.append(auditor)
    genesis = tuple(alpha.take_outgoing())
    for auditor in auditors:
        auditor.handle_batch(genesis, 1)
    return alpha, desk, providers, auditors


def test_an_update_of_the_auditors_rotates_the_vault_signed_by_the_old_majority() -> None:
    """Two of three replaced (OLD -> NEWER: only alpha stays): alpha builds the rotation into
    the update's quantum, each old auditor's engine validates it and the removed auditors
    sign it with their result for that quantum (their index before the update); an old
    majority's signatures rotate the vault, which then answers to the new set (before, it
    stayed with the old keys until `vault_rotate` by hand). When the desk submits:
    test_payouts.py."""
    alpha, desk, providers, auditors = _constellation(OLD[1:])
    prev = alpha.engine.state.require_config()
    _update(alpha, NEWER, OLD[1:])
    providers.rebuild()
    executed = alpha.take_outgoing()
    quantum = executed[-1].quantum
    body = quantum.body
    assert isinstance(body, ConstellationQuantum)
    assert [r.provider for r in body.rotations] == ["local-vault"]
    (rotation,) = desk.rotation_begin(prev, quantum.apex, body.rotations, OLD[0])
    assert rotation.old_threshold == 2
    for auditor in auditors:
        outcome = auditor.handle_batch(tuple(executed), quantum.apex)
        assert auditor.status.state != NodeState.FAILED, auditor.status.reason
        results = outcome.results
        assert [r.signature.auditor_index for r in results] == [OLD.index(auditor.keypair)]
        (signature,) = results[0].rotation_signatures
        assert results[0].tx_signature is None
        assert desk.rotation_offer(quantum.apex, signature)
    assert not desk.rotation_offer(quantum.apex - 1, transaction_sign(b"x", NEWER[1]))
    signatures = list(desk.rotations["local-vault"].payouts[quantum.apex].signatures.values())
    assert len(signatures) == 3  # alpha's and both removed auditors'
    provider = providers.current()["local-vault"]
    provider.prepare()
    assert provider.vault_mismatch is not None  # the new set's provider, before the rotation
    with pytest.raises(PaymentSubmitError, match="1 valid vault signatures, 2 needed"):
        provider.submit_rotation(rotation.transaction, signatures[:1])  # alpha alone
    provider.submit_rotation(rotation.transaction, signatures)
    assert vault_signers("VAULT") == (tuple(sorted(_keys(NEWER), key=encode_public_key)), 2)
    assert provider.needs_preparation()  # looked at again at once, not VAULT_RECHECK_MS on
    provider.prepare()
    assert provider.vault_mismatch is None
    provider.submit_rotation(rotation.transaction, signatures)  # applied already: no refusal
    removed = _payout(12)
    with pytest.raises(LedgerRuleError, match="1 valid vault signatures, 2 needed"):
        vault_submit(removed, _signed(removed, OLD))  # the removed keys move nothing now


@pytest.mark.parametrize(
    "tamper",
    ["other signers", "missing", "longer validity", "unknown provider"],
)
def test_an_auditor_refuses_an_update_whose_rotation_is_not_the_one_it_calls_for(
    tamper: str,
) -> None:
    """Alpha could otherwise hand the vault to keys of its choosing (or leave it with the old
    ones): every auditor's engine checks the rotations against the update, and goes Failed
    on any other, signing nothing."""
    alpha, desk, _, auditors = _constellation(OLD[1:])
    _update(alpha, NEW, OLD[1:])
    signed = alpha.take_outgoing()[-1]
    body = signed.quantum.body
    assert isinstance(body, ConstellationQuantum)
    (rotation,) = body.rotations
    until = signed.quantum.timestamp + ROTATION_TTL_MS
    rotations = {
        "other signers": (
            VaultRotationTx(rotation.provider, local_rotation("VAULT", _keys(NEWER), 2, until)),
        ),
        "missing": (),
        "longer validity": (
            VaultRotationTx(rotation.provider, local_rotation("VAULT", _keys(NEW), 2, until + 1)),
        ),
        "unknown provider": (VaultRotationTx("local-other", rotation.transaction),),
    }[tamper]
    quantum = dataclasses.replace(
        signed.quantum, body=dataclasses.replace(body, rotations=rotations)
    )
    forged = dataclasses.replace(signed, quantum=quantum)
    outcome = auditors[0].handle_batch((forged,), quantum.apex)
    assert outcome.results == []
    assert auditors[0].status.state == NodeState.FAILED


def test_the_same_auditors_in_another_order_call_for_no_rotation() -> None:
    old = Config.from_settings(default_settings(OLD))
    same = dataclasses.replace(default_settings([OLD[0], OLD[2], OLD[1]]), version=2)
    new = Config.from_settings(same, old.constellation_id)
    assert rotations_called_for(old, new) == ()
    newer = Config.from_settings(
        dataclasses.replace(default_settings(NEWER), version=2), old.constellation_id
    )
    assert rotations_called_for(old, newer) == ("local-vault",)
    provider = LocalLedgerProvider(SETTINGS, OLD[2], _keys(OLD))
    transaction = provider.build_rotation(old.auditor_keys, newer.auditor_keys, 2, 9_000)
    provider.validate_rotation(old.auditor_keys, newer.auditor_keys, 2, 5_000, transaction)
    signature = provider.sign_rotation(transaction)
    assert provider.rotation_signature_valid(transaction, signature, old.auditor_keys)
    assert not provider.rotation_signature_valid(transaction, signature, newer.auditor_keys)
    other = transaction_sign(transaction, NEWER[1])
    assert not provider.rotation_signature_valid(transaction, other, old.auditor_keys)
