"""Admin of the quanta app: the chain, the settings history, evidence and settings drafts.

Everything the engine writes is read-only here (`ReadOnlyAdmin`): the state changes only
through quanta. The one thing an operator writes is a settings draft: the draft collects the
auditors' signatures and, once a majority signed, goes to the engine as a settings quantum
(`quanta.settings_drafts`).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

# admin_exchange registers the exchange app's rows (the exchange imports nothing of quanta).
from quanta import admin_exchange, settings_drafts  # noqa: F401
from quanta.admin_helpers import ReadOnlyAdmin, pre, units
from quanta.core.evidence import EvidenceItem, EvidenceKind, SignedPayload, evidence_holds
from quanta.core.keys import encode_public_key
from quanta.core.readable import readable_json
from quanta.core.settings_json import settings_to_json
from quanta.core.xdr.codec import XdrError, decode
from quanta.core.xdr.schema import (
    QUANTUM_BODY,
    ConstellationSettings,
    EffectsGroup,
    MessageType,
    PayloadProof,
    Quantum,
)
from quanta.models import (
    EffectsGroupRecord,
    EvidenceRecord,
    FeeBalanceRecord,
    ProviderCursorRecord,
    QuantumRecord,
    SettingsDraft,
    SettingsRecord,
    SnapshotRecord,
    UnfinalSettingsRecord,
)
from quanta.selectors import constellation_id


class QuantumKindFilter(admin.SimpleListFilter):
    """Filters quanta by the kind of their body."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(kind), MessageType(kind).name.lower()) for kind in QUANTUM_BODY.arms]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(kind=int(value)) if value and value.isdigit() else queryset


@admin.register(QuantumRecord)
class QuantumRecordAdmin(ReadOnlyAdmin):
    """The finalized quanta, newest first, with their decoded body and signatures."""

    list_display = ["apex", "kind_name", "initiator", "executed_at", "hash_hex"]
    list_filter = [QuantumKindFilter]
    search_fields = ["=apex", "=initiator"]
    ordering = ["-apex"]
    fields = ["apex", "kind_name", "initiator", "executed_at", "hash_hex", "decoded", "proof"]
    readonly_fields = fields

    @admin.display(description="kind")
    def kind_name(self, record: QuantumRecord) -> str:
        return MessageType(record.kind).name.lower()

    @admin.display(description="executed at (UTC)")
    def executed_at(self, record: QuantumRecord) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(record.timestamp_ms / 1000, tz=datetime.UTC)

    @admin.display(description="quantum hash")
    def hash_hex(self, record: QuantumRecord) -> str:
        return bytes(record.quantum_hash).hex()

    @admin.display(description="quantum")
    def decoded(self, record: QuantumRecord) -> str:
        return pre(readable_json(decode(Quantum, bytes(record.data))))

    @admin.display(description="payload proof (signatures)")
    def proof(self, record: QuantumRecord) -> str:
        return pre(readable_json(decode(PayloadProof, bytes(record.signatures))))


@admin.register(EffectsGroupRecord)
class EffectsGroupRecordAdmin(ReadOnlyAdmin):
    """Each account's effects per quantum: the account history."""

    list_display = ["apex", "account", "account_sequence"]
    search_fields = ["=account", "=apex"]
    ordering = ["-apex", "account"]
    fields = ["apex", "account", "account_sequence", "decoded"]
    readonly_fields = fields

    @admin.display(description="effects")
    def decoded(self, record: EffectsGroupRecord) -> str:
        return pre(readable_json(decode(EffectsGroup, bytes(record.data))))


def _settings(record: SettingsRecord | UnfinalSettingsRecord) -> ConstellationSettings:
    return decode(ConstellationSettings, bytes(record.data))


@admin.register(SettingsRecord)
class SettingsRecordAdmin(ReadOnlyAdmin):
    """Every version of the settings with the apex that put it in force."""

    list_display = ["version", "apex", "quote_asset", "assets", "auditors", "lot_and_balance"]
    search_fields = ["=version", "=apex"]
    fields = ["version", "apex", "changes", "document"]
    readonly_fields = fields

    @admin.display(description="quote asset")
    def quote_asset(self, record: SettingsRecord) -> str:
        return next(a.code for a in _settings(record).assets if a.is_quote_asset)

    @admin.display(description="assets")
    def assets(self, record: SettingsRecord) -> str:
        return ", ".join(
            a.code + (" (suspended)" if a.is_suspended else "") for a in _settings(record).assets
        )

    @admin.display(description="auditors")
    def auditors(self, record: SettingsRecord) -> int:
        return len(_settings(record).auditors)

    @admin.display(description="min lot / min balance")
    def lot_and_balance(self, record: SettingsRecord) -> str:
        settings = _settings(record)
        return f"{units(settings.min_allowed_lot_size)} / {units(settings.min_account_balance)}"

    @admin.display(description="changed since the previous version")
    def changes(self, record: SettingsRecord) -> str:
        previous = SettingsRecord.objects.filter(version=record.version - 1).first()
        if previous is None:
            return "(first settings)"
        return ", ".join(settings_changes(_settings(previous), _settings(record))) or "nothing"

    @admin.display(description="settings")
    def document(self, record: SettingsRecord) -> str:
        return pre(json.dumps(settings_to_json(_settings(record)), indent=2))


def settings_changes(old: ConstellationSettings, new: ConstellationSettings) -> list[str]:
    """Returns the names of the top-level settings that differ (the version aside)."""
    before, after = settings_to_json(old), settings_to_json(new)
    return [key for key in after if key != "settings_version" and before.get(key) != after.get(key)]


@admin.register(UnfinalSettingsRecord)
class UnfinalSettingsRecordAdmin(ReadOnlyAdmin):
    """Settings of an update alpha executed that no final quantum brought in yet (a restarted
    alpha waits for their auditors too); gone once final, or found final nowhere."""

    list_display = ["version", "auditors"]
    fields = ["version", "document"]
    readonly_fields = fields

    @admin.display(description="auditors")
    def auditors(self, record: UnfinalSettingsRecord) -> int:
        return len(_settings(record).auditors)

    @admin.display(description="settings")
    def document(self, record: UnfinalSettingsRecord) -> str:
        return pre(json.dumps(settings_to_json(_settings(record)), indent=2))


@admin.register(ProviderCursorRecord)
class ProviderCursorRecordAdmin(ReadOnlyAdmin):
    """Where each payment provider's deposit stream was consumed up to."""

    list_display = ["provider", "cursor"]
    search_fields = ["provider"]


@admin.register(FeeBalanceRecord)
class FeeBalanceRecordAdmin(ReadOnlyAdmin):
    """The constellation's fee account (what withdrawal fees paid), as of the snapshot."""

    list_display = ["asset", "amount_units"]

    @admin.display(description="amount", ordering="amount")
    def amount_units(self, record: FeeBalanceRecord) -> str:
        return units(record.amount)


@admin.register(SnapshotRecord)
class SnapshotRecordAdmin(ReadOnlyAdmin):
    """The persisted snapshot's apex and state hash."""

    list_display = ["apex", "state_hash_hex", "next_account_id", "updated_at"]
    fields = ["apex", "state_hash_hex", "next_account_id", "constellation_sequence", "updated_at"]
    readonly_fields = fields

    @admin.display(description="state hash")
    def state_hash_hex(self, record: SnapshotRecord) -> str:
        return bytes(record.state_hash).hex()


def evidence_item(record: EvidenceRecord) -> EvidenceItem:
    """Rebuilds the core's evidence item from its record, to check it (`evidence_holds`)."""
    second = None
    if bytes(record.other_quantum) or bytes(record.other_payload_hash):
        second = SignedPayload(
            bytes(record.other_quantum),
            bytes(record.other_payload_hash),
            bytes(record.other_signature),
        )
    first = SignedPayload(
        bytes(record.quantum), bytes(record.payload_hash), bytes(record.signature)
    )
    kind = EvidenceKind(record.kind)
    return EvidenceItem(kind, bytes(record.signer), int(record.apex), first, second)


def _quantum_text(data: bytes) -> str:
    if not data:
        return "-"
    try:
        return pre(readable_json(decode(Quantum, data)))
    except XdrError as error:
        return f"not a quantum: {error}"


@admin.register(EvidenceRecord)
class EvidenceRecordAdmin(ReadOnlyAdmin):
    """Evidence against a node's key, newest first; each row re-checked from its own bytes."""

    list_display = ["id", "kind", "apex", "signer_key", "holds", "created_at"]
    list_filter = ["kind"]
    search_fields = ["=apex"]
    fields = [
        "kind",
        "apex",
        "signer_key",
        "holds",
        "detail",
        "created_at",
        "payload_hash_hex",
        "signature_hex",
        "quantum_decoded",
        "other_payload_hash_hex",
        "other_signature_hex",
        "other_quantum_decoded",
        "carrier_hex",
    ]
    readonly_fields = fields

    @admin.display(description="against key")
    def signer_key(self, record: EvidenceRecord) -> str:
        return encode_public_key(bytes(record.signer))

    @admin.display(description="verifies", boolean=True)
    def holds(self, record: EvidenceRecord) -> bool:
        found = constellation_id()
        return found is not None and evidence_holds(evidence_item(record), found)

    @admin.display(description="payload hash")
    def payload_hash_hex(self, record: EvidenceRecord) -> str:
        return bytes(record.payload_hash).hex()

    @admin.display(description="signature")
    def signature_hex(self, record: EvidenceRecord) -> str:
        return bytes(record.signature).hex()

    @admin.display(description="quantum")
    def quantum_decoded(self, record: EvidenceRecord) -> str:
        return _quantum_text(bytes(record.quantum))

    @admin.display(description="second payload hash")
    def other_payload_hash_hex(self, record: EvidenceRecord) -> str:
        return bytes(record.other_payload_hash).hex() or "-"

    @admin.display(description="second signature")
    def other_signature_hex(self, record: EvidenceRecord) -> str:
        return bytes(record.other_signature).hex() or "-"

    @admin.display(description="second quantum")
    def other_quantum_decoded(self, record: EvidenceRecord) -> str:
        return _quantum_text(bytes(record.other_quantum))

    @admin.display(description="signed frame that carried it (hex)")
    def carrier_hex(self, record: EvidenceRecord) -> str:
        return pre(bytes(record.carrier).hex()) if bytes(record.carrier) else "-"


class DraftForm(forms.Form):
    """The settings document of a new draft."""

    document = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 32, "cols": 100, "style": "font-family: monospace"}),
        help_text="The settings in force as JSON; edit, then save to get the bytes to sign.",
    )

    def clean_document(self) -> object:
        try:
            return json.loads(self.cleaned_data["document"])
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"not valid JSON: {error}") from None


class SignatureForm(forms.Form):
    """An auditor's signature of a draft, pasted by the operator."""

    public_key = forms.CharField(required=False, label="auditor public key (G...)")
    signature = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 100}),
        help_text="hex or base64, or one line G...:<base64> as sign_settings_update prints it",
    )


@admin.register(SettingsDraft)
class SettingsDraftAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Drafts of settings updates: draft, collect signatures, submit."""

    list_display = ["id", "next_version", "status", "signed", "created_by", "created_at"]
    list_filter = ["status"]
    add_template = "admin/quanta/settingsdraft/draft_add.html"
    detail_template = "admin/quanta/settingsdraft/draft_detail.html"

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # Drafts are the record of who proposed what.

    @admin.display(description="version")
    def next_version(self, draft: SettingsDraft) -> str:
        return f"v{draft.base_version} → v{draft.base_version + 1}"

    @admin.display(description="signatures")
    def signed(self, draft: SettingsDraft) -> int:
        return len(draft.signatures)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = DraftForm(request.POST)
            if form.is_valid():
                return self._draft_create(request, form)
        else:
            try:
                form = DraftForm(initial={"document": settings_drafts.draft_document_initial()})
            except settings_drafts.DraftError as error:
                self.message_user(request, str(error), messages.ERROR)
                return HttpResponseRedirect(self._url("changelist"))
        context = {**self._context(request, "Draft a settings update"), "form": form}
        return TemplateResponse(request, self.add_template, context)

    def _draft_create(self, request: HttpRequest, form: DraftForm) -> HttpResponse:
        try:
            draft = settings_drafts.draft_create(
                document=form.cleaned_data["document"], created_by=request.user.get_username()
            )
        except settings_drafts.DraftError as error:
            form.add_error("document", str(error))
            context = {**self._context(request, "Draft a settings update"), "form": form}
            return TemplateResponse(request, self.add_template, context)
        self.message_user(request, "Draft saved: collect the auditors' signatures.")
        return HttpResponseRedirect(self._url("change", draft.pk))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        draft = get_object_or_404(SettingsDraft, pk=object_id)
        if not self.has_view_or_change_permission(request, draft):
            raise PermissionDenied
        if request.method == "POST":
            if not self.has_change_permission(request, draft):
                raise PermissionDenied
            return self._draft_post(request, draft)
        return TemplateResponse(request, self.detail_template, self._detail(request, draft))

    def _draft_post(self, request: HttpRequest, draft: SettingsDraft) -> HttpResponse:
        try:
            if request.POST.get("action") == "submit":
                self._draft_submit(request, draft)
            else:
                self._draft_sign(request, draft)
        except settings_drafts.DraftError as error:
            self.message_user(request, str(error), messages.ERROR)
        return HttpResponseRedirect(self._url("change", draft.pk))

    def _draft_sign(self, request: HttpRequest, draft: SettingsDraft) -> None:
        form = SignatureForm(request.POST)
        if not form.is_valid():
            raise settings_drafts.DraftError("paste an auditor's signature")
        signature = settings_drafts.signature_parse(
            public_key=form.cleaned_data["public_key"], signature=form.cleaned_data["signature"]
        )
        draft = settings_drafts.draft_add_signature(draft_id=draft.pk, signature=signature)
        present, needed, total = settings_drafts.draft_signature_count(draft)
        self.message_user(
            request, f"Signature recorded: {present} of {total} signed, {needed} needed."
        )

    def _draft_submit(self, request: HttpRequest, draft: SettingsDraft) -> None:
        draft = settings_drafts.draft_submit(draft_id=draft.pk)
        if draft.status == SettingsDraft.Status.SUBMITTED:
            version = draft.base_version + 1
            text = f"Settings v{version} are in force from apex {draft.submitted_apex}."
            self.message_user(request, text)
        else:
            text = f"The engine did not apply the update: {draft.engine_answer}"
            self.message_user(request, text, messages.ERROR)

    def _detail(self, request: HttpRequest, draft: SettingsDraft) -> dict[str, Any]:
        update = settings_drafts.draft_update(draft)
        present, needed, total = settings_drafts.draft_signature_count(draft)
        base = settings_drafts.draft_base_settings(draft)
        return {
            **self._context(request, f"Settings draft {draft.pk}"),
            "draft": draft,
            "is_open": draft.status == SettingsDraft.Status.DRAFT,
            "changes": settings_changes(base, update.settings),
            "document": json.dumps(settings_to_json(update.settings), indent=2),
            "digest_hex": settings_drafts.draft_digest(draft).hex(),
            "message_base64": settings_drafts.draft_message_base64(draft),
            "signers": settings_drafts.draft_signers(draft),
            "present": present,
            "needed": needed,
            "total": total,
            "form": SignatureForm(),
        }

    def _context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "has_view_permission": self.has_view_permission(request),
            "has_change_permission": self.has_change_permission(request),
        }

    def _url(self, view: str, *args: object) -> str:
        return reverse(f"admin:quanta_settingsdraft_{view}", args=args)
