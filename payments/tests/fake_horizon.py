"""A fake of Horizon (Stellar's HTTP API), for tests: Horizon is unreachable from here.

A small local HTTP server that keeps accounts (sequence number, signers, threshold) and the
payments it applied, and serves them in Horizon's recorded response shapes:
`GET /accounts/{id}`, `GET /accounts/{id}/payments?cursor&order&limit&join=transactions`
(`_embedded.records`, paging tokens, the joined transaction with its memo) and
`POST /transactions` (form field `tx`), which applies a payment or setOptions (signers,
thresholds) transaction the way Stellar would judge it here: sequence number (with a minimum
sequence number, CAP-21, any above the account's), time bounds
and signature weight, answering failures as Horizon does (`400 transaction_failed` with
`extras.result_codes`). With
`destinations_checked`, a payment to an account the fake does not hold fails with
`op_no_destination`, and one of a credit asset the destination holds no trustline for with
`op_no_trust`: as on Stellar, such a transaction enters the ledger failed (its sequence number
is used, `successful: false`) and its payment shows in the payments stream only with
`include_failed=true`. It is not Stellar: no fees or ledgers beyond a clock.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from stellar_sdk import Keypair, Network, StrKey, TransactionEnvelope
from stellar_sdk.exceptions import BadSignatureError
from stellar_sdk.operation import Payment, SetOptions


@dataclass
class FakeAccount:
    """An account of the fake: its sequence and (for a vault) signers and threshold."""

    account_id: str
    sequence: int
    signers: list[str] = field(default_factory=list)
    threshold: int = 1
    trustlines: set[str] = field(default_factory=set)
    """Credit assets (`CODE:ISSUER`) the account may receive."""


class FakeHorizon:
    """The fake's state and its HTTP server on a loopback port (a context manager)."""

    def __init__(
        self,
        passphrase: str = Network.TESTNET_NETWORK_PASSPHRASE,
        *,
        destinations_checked: bool = False,
    ) -> None:
        """Prepares an empty network; `start` serves it. `destinations_checked`: payments to
        unknown accounts or without a trustline fail on the ledger, as on Stellar."""
        self.passphrase = passphrase
        self.destinations_checked = destinations_checked
        self.accounts: dict[str, FakeAccount] = {}
        self.payments: list[dict[str, Any]] = []
        self.submitted: list[str] = []
        self.transactions: dict[str, dict[str, Any]] = {}
        self.clock_offset_s = 0.0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Returns the base URL the fake serves."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> FakeHorizon:
        """Serves on an ephemeral loopback port in a daemon thread."""
        fake = self

        class Handler(_Handler):
            horizon = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        """Stops serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHorizon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def account_add(self, account: FakeAccount) -> None:
        """Creates an account on the fake network."""
        self.accounts[account.account_id] = account

    def pay(
        self,
        source: str,
        destination: str,
        amount: str,
        memo_id: int | None = None,
        asset: tuple[str, str] | None = None,
        created_at: datetime | None = None,
        tx_hash: str | None = None,
        successful: bool = True,
    ) -> str:
        """Records a payment (as if someone paid on Stellar; `successful=False`: its
        transaction entered the ledger failed); returns its paging token."""
        with self.lock:
            token = str((len(self.payments) + 1) * 4096)
            tx_hash = tx_hash or f"{len(self.payments) + 1:064x}"
            record: dict[str, Any] = {
                "id": token,
                "paging_token": token,
                "type": "payment",
                "type_i": 1,
                "transaction_successful": successful,
                "source_account": source,
                "from": source,
                "to": destination,
                "amount": amount,
                "created_at": (created_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "transaction_hash": tx_hash,
                "transaction": {"hash": tx_hash, "memo_type": "none", "successful": successful},
            }
            if asset is None:
                record["asset_type"] = "native"
            else:
                record.update(
                    asset_type="credit_alphanum4", asset_code=asset[0], asset_issuer=asset[1]
                )
            if memo_id is not None:
                record["transaction"].update(memo_type="id", memo=str(memo_id))
            self.payments.append(record)
            return token

    def account_json(self, account_id: str) -> dict[str, Any] | None:
        """Returns Horizon's account resource shape, None if unknown."""
        account = self.accounts.get(account_id)
        if account is None:
            return None
        return {
            "id": account_id,
            "account_id": account_id,
            "sequence": str(account.sequence),
            "subentry_count": 0,
            "last_modified_ledger": 1,
            "thresholds": {
                "low_threshold": account.threshold,
                "med_threshold": account.threshold,
                "high_threshold": account.threshold,
            },
            "signers": [
                {"key": k, "weight": 1, "type": "ed25519_public_key"} for k in account.signers
            ],
            "balances": self._balances_json(account_id),
            "flags": {},
            "data": {},
        }

    def _balances_json(self, account_id: str) -> list[dict[str, str]]:
        """Returns the account's balances as Horizon shapes them: what successful payments
        brought in minus what they took out (the fake has no fees, reserves or trustlines)."""
        totals: dict[tuple[str, str, str], int] = {}
        for payment in self.payments:
            if not payment["transaction_successful"]:
                continue
            key = (
                payment["asset_type"],
                payment.get("asset_code", ""),
                payment.get("asset_issuer", ""),
            )
            units = int(Decimal(payment["amount"]) * 10_000_000)
            if payment["to"] == account_id:
                totals[key] = totals.get(key, 0) + units
            if payment["from"] == account_id:
                totals[key] = totals.get(key, 0) - units
        balances = []
        for (asset_type, code, issuer), units in sorted(totals.items()):
            whole, fraction = divmod(units, 10_000_000)
            entry = {"asset_type": asset_type, "balance": f"{whole}.{fraction:07d}"}
            if code:
                entry.update(asset_code=code, asset_issuer=issuer)
            balances.append(entry)
        return balances

    def now_s(self) -> float:
        """Returns the fake network's clock (tests may move it ahead)."""
        return time.time() + self.clock_offset_s

    def latest_ledger(self) -> dict[str, Any]:
        """Returns Horizon's ledgers collection shape with one ledger closed now."""
        closed = datetime.fromtimestamp(self.now_s(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        record = {"id": "1", "paging_token": "4096", "sequence": 1, "closed_at": closed}
        return {"_links": {}, "_embedded": {"records": [record]}}

    def payments_page(
        self, account_id: str, cursor: str, limit: int, *, include_failed: bool = False
    ) -> dict[str, Any]:
        """Returns Horizon's payments collection shape after `cursor` (ascending); payments of
        failed transactions only with `include_failed`, as Horizon does."""
        after = int(cursor or 0)
        records = [
            p
            for p in self.payments
            if int(p["paging_token"]) > after
            and account_id in (p["from"], p["to"])
            and (include_failed or p["transaction_successful"])
        ][:limit]
        return {
            "_links": {"self": {"href": ""}, "next": {"href": ""}, "prev": {"href": ""}},
            "_embedded": {"records": records},
        }

    def submit(self, xdr: str) -> tuple[int, dict[str, Any]]:
        """Judges and applies a submitted transaction; returns (status, body)."""
        envelope = TransactionEnvelope.from_xdr(xdr, self.passphrase)
        tx = envelope.transaction
        with self.lock:
            self.submitted.append(xdr)
            account = self.accounts.get(tx.source.account_id)
            code = self._judge(envelope, account)
            if code is not None:
                return 400, _failure(xdr, code)
            assert account is not None
            account.sequence = tx.sequence
            options = [op for op in tx.operations if isinstance(op, SetOptions)]
            payments = [op for op in tx.operations if not isinstance(op, SetOptions)]
            failures = [self._operation_failure(operation) for operation in payments]
            if not any(failures):
                for option in options:
                    _set_options(account, option)
        memo = getattr(tx.memo, "memo_id", None)
        digest = envelope.hash_hex()
        successful = not any(failures)
        for operation in payments:
            assert isinstance(operation, Payment)
            destination = operation.destination.account_id
            asset = (
                None
                if operation.asset.is_native()
                else (operation.asset.code, operation.asset.issuer)
            )
            self.pay(
                tx.source.account_id,
                destination,
                operation.amount,
                memo,
                asset=asset,
                tx_hash=digest,
                successful=successful,
            )
        self.transactions[digest] = {"hash": digest, "successful": successful, "envelope_xdr": xdr}
        if not successful:
            codes = [code or "op_success" for code in failures]
            return 400, _failure(xdr, "tx_failed", codes)
        return 200, {
            "hash": digest,
            "ledger": 1,
            "successful": True,
            "envelope_xdr": xdr,
            "result_xdr": "",
            "result_meta_xdr": "",
        }

    def _operation_failure(self, operation: Any) -> str | None:
        """Returns the result code of a payment that fails when applied (None: it applies)."""
        if not self.destinations_checked:
            return None
        assert isinstance(operation, Payment)
        destination = self.accounts.get(operation.destination.account_id)
        if destination is None:
            return "op_no_destination"
        asset = operation.asset
        if not asset.is_native() and f"{asset.code}:{asset.issuer}" not in destination.trustlines:
            return "op_no_trust"
        return None

    @staticmethod
    def _sequence_valid(sequence: int, preconditions: Any, current: int) -> bool:
        """Stellar's rule: the next sequence, or with a minimum sequence number (CAP-21) any
        sequence above the account's whose minimum the account's reaches."""
        minimum = None if preconditions is None else preconditions.min_sequence_number
        if minimum is None:
            return sequence == current + 1
        return minimum <= current < sequence

    def _judge(self, envelope: TransactionEnvelope, account: FakeAccount | None) -> str | None:
        tx = envelope.transaction
        if account is None:
            return "tx_no_source_account"
        if not self._sequence_valid(tx.sequence, tx.preconditions, account.sequence):
            return "tx_bad_seq"
        bounds = tx.preconditions.time_bounds if tx.preconditions else None
        if bounds is not None and bounds.max_time and self.now_s() > bounds.max_time:
            return "tx_too_late"
        signed = set()
        for decorated in envelope.signatures:
            for key in account.signers:
                keypair = Keypair.from_public_key(key)
                if keypair.signature_hint() != decorated.signature_hint:
                    continue
                try:
                    keypair.verify(envelope.hash(), decorated.signature)
                    signed.add(key)
                except BadSignatureError:
                    pass
        return None if len(signed) >= account.threshold else "tx_bad_auth"


def _set_options(account: FakeAccount, option: SetOptions) -> None:
    """Applies a setOptions operation's signer and thresholds (the fake keeps one threshold
    for all three levels; a master weight is ignored: the fake's vaults have no master key)."""
    if option.signer is not None:
        key = StrKey.encode_ed25519_public_key(option.signer.signer_key.signer_key)
        if key in account.signers:
            account.signers.remove(key)
        if option.signer.weight > 0:
            account.signers.append(key)
    if option.med_threshold is not None:
        account.threshold = option.med_threshold


def _failure(xdr: str, code: str, operations: list[str] | None = None) -> dict[str, Any]:
    codes: dict[str, Any] = {"transaction": code}
    if operations is not None:
        codes["operations"] = operations
    return {
        "type": "https://stellar.org/horizon-errors/transaction_failed",
        "title": "Transaction Failed",
        "status": 400,
        "detail": "The transaction failed when submitted to the stellar network.",
        "extras": {"envelope_xdr": xdr, "result_codes": codes},
    }


class _Handler(BaseHTTPRequestHandler):
    horizon: FakeHorizon

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet in tests
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/hal+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlparse(self.path)
        parts = [p for p in url.path.split("/") if p]
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if len(parts) == 2 and parts[0] == "accounts":
            body = self.horizon.account_json(parts[1])
            if body is not None:
                return self._answer(200, body)
        elif len(parts) == 2 and parts[0] == "transactions":
            body = self.horizon.transactions.get(parts[1])
            if body is not None:
                return self._answer(200, body)
        elif parts == ["ledgers"]:
            return self._answer(200, self.horizon.latest_ledger())
        elif len(parts) == 3 and parts[0] == "accounts" and parts[2] == "payments":
            page = self.horizon.payments_page(
                parts[1],
                query.get("cursor", ""),
                int(query.get("limit", 10)),
                include_failed=query.get("include_failed", "").lower() == "true",
            )
            return self._answer(200, page)
        self._answer(
            404,
            {
                "type": "https://stellar.org/horizon-errors/not_found",
                "title": "Resource Missing",
                "status": 404,
            },
        )

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", 0))
        form = parse_qs(self.rfile.read(length).decode())
        if urlparse(self.path).path.rstrip("/") != "/transactions" or "tx" not in form:
            return self._answer(404, {"status": 404, "title": "Resource Missing"})
        status, body = self.horizon.submit(form["tx"][0])
        self._answer(status, body)
