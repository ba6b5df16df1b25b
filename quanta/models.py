"""Persistence of the quantum chain and node metadata (written only by `services.py`)."""

from django.db import models

from exchange.fields import U64Field


class QuantumRecord(models.Model):
    """One finalized quantum: its XDR bytes, hashes and the node signatures collected."""

    apex = U64Field(primary_key=True)
    quantum_hash = models.BinaryField(max_length=32)
    payload_hash = models.BinaryField(max_length=32)
    timestamp_ms = models.BigIntegerField()
    kind = models.SmallIntegerField(help_text="MessageType of the quantum body")
    initiator = U64Field(default=0, help_text="account id of the requester; 0: none")
    data = models.BinaryField(help_text="XDR of the Quantum")
    signatures = models.BinaryField(help_text="XDR of the PayloadProof")

    class Meta:
        ordering = ["apex"]

    def __str__(self) -> str:
        return f"quantum {self.apex}"


class EffectsGroupRecord(models.Model):
    """One account's effects group of one quantum: the chronicler's history index."""

    apex = U64Field()
    account = U64Field()
    account_sequence = U64Field()
    data = models.BinaryField(help_text="XDR of the EffectsGroup")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "apex"], name="effects_group_account_apex")
        ]
        # A history page names every group of its quanta (their hashes tie the account's own
        # group to the signed effects proof): one range per apex.
        indexes = [models.Index(fields=["apex", "account"], name="effects_group_apex_account")]

    def __str__(self) -> str:
        return f"effects of account {self.account} at {self.apex}"


class SettingsRecord(models.Model):
    """A version of the constellation settings and the apex that brought it in."""

    version = U64Field(primary_key=True)
    apex = U64Field()
    data = models.BinaryField(help_text="XDR of the ConstellationSettings")

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"settings v{self.version} (apex {self.apex})"


class UnfinalSettingsRecord(models.Model):
    """Settings of an update alpha executes, written before the update leaves alpha and
    removed once a final quantum brings that version in (or a newer one). A restarted alpha
    waits for enough of their auditors too (`AlphaNode.begin_rising`): the update is final
    with them, and the auditors it replaces need never have seen it."""

    version = U64Field()
    data = models.BinaryField(help_text="XDR of the ConstellationSettings")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"unfinal settings v{self.version}"


class AlphaJournalRecord(models.Model):
    """A quantum alpha executed, with alpha's signature, written before it leaves alpha for
    the auditors (group commit, `AlphaHerald.journal`) and removed once a snapshot covers its
    apex. A restarted alpha takes the rows above its persisted ones as its own chain: an
    auditor may hold any quantum alpha sent, so alpha never executes another one there."""

    apex = U64Field(primary_key=True)
    data = models.BinaryField(help_text="XDR of the SignedQuantum (alpha's signature)")

    class Meta:
        ordering = ["apex"]

    def __str__(self) -> str:
        return f"journaled quantum {self.apex}"


class ProviderCursorRecord(models.Model):
    """Where a payment provider's deposit stream was last consumed."""

    provider = models.CharField(max_length=140, primary_key=True)
    cursor = models.CharField(max_length=128)

    def __str__(self) -> str:
        return f"{self.provider} @ {self.cursor}"


class FeeBalanceRecord(models.Model):
    """One asset of the constellation's fee account (what withdrawal fees paid), as of the
    snapshot; an asset without a row holds nothing."""

    asset = models.CharField(max_length=12, primary_key=True)
    amount = U64Field()

    class Meta:
        ordering = ["asset"]

    def __str__(self) -> str:
        return f"fee account: {self.amount} {self.asset}"


class SnapshotRecord(models.Model):
    """The single row saying up to which apex the persisted state goes."""

    id = models.SmallIntegerField(primary_key=True, default=1)
    apex = U64Field()
    quantum_hash = models.BinaryField(max_length=32)
    state_hash = models.BinaryField(max_length=32)
    next_account_id = U64Field()
    constellation_sequence = U64Field(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"snapshot at apex {self.apex}"


class StateAttestationRecord(models.Model):
    """This node's signature of its state hash after the quantum at `apex` (a multiple of
    STATE_ATTEST_EVERY): what a node joining from a snapshot counts a majority of
    (`quanta.core.state_snapshot`). The last `ATTESTATIONS_KEPT` apexes are kept."""

    apex = U64Field(primary_key=True)
    state_hash = models.BinaryField(max_length=32)
    signature = models.BinaryField(max_length=64)

    def __str__(self) -> str:
        return f"state attestation at apex {self.apex}"


class SettingsDraft(models.Model):
    """A proposed settings change collecting auditor signatures before it is submitted.

    Written only by `quanta.settings_drafts`. `message` is the exact XDR (Message union) of the
    ConstellationUpdate whose SHA-256 every auditor signs; `signatures` maps each signer's G...
    key to its base64 signature, each verified when it was added.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "collecting signatures"
        SUBMITTED = "submitted", "in force"
        REFUSED = "refused", "refused by the engine"

    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    base_version = U64Field(help_text="settings version in force when drafted")
    message = models.BinaryField(help_text="XDR of the Message union holding the update")
    signatures = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    submitted_apex = U64Field(null=True, blank=True)
    engine_answer = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"settings draft {self.pk} (v{self.base_version + 1}, {self.status})"


class EvidenceRecord(models.Model):
    """Evidence against a node's key (`quanta.core.evidence`): an auditor signature that does
    not verify, or two quanta alpha signed at one apex. It holds the bytes that prove it, so
    it can be checked without trusting the node that wrote it (`EvidenceRecord.item`)."""

    class Kind(models.TextChoices):
        INVALID_SIGNATURE = "invalid_signature", "auditor signature that does not verify"
        ALPHA_EQUIVOCATION = "alpha_equivocation", "two alpha-signed quanta at one apex"

    created_at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    signer = models.BinaryField(max_length=32, help_text="public key the evidence is against")
    apex = U64Field()
    detail = models.TextField(blank=True, default="")
    quantum = models.BinaryField(help_text="XDR of the (first) Quantum")
    payload_hash = models.BinaryField(max_length=32)
    signature = models.BinaryField(max_length=64)
    other_quantum = models.BinaryField(default=b"", help_text="XDR of the second Quantum")
    other_payload_hash = models.BinaryField(max_length=32, default=b"")
    other_signature = models.BinaryField(max_length=64, default=b"")
    carrier = models.BinaryField(
        default=b"", help_text="the signer's own signed frame that carried the signature"
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} at apex {self.apex}"
