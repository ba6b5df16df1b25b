"""A node that joins (or returns) empty: state attestations, the snapshot served, the join.

Three parts, docs/admin.md "Joining empty" gives the runbook, docs/engine.md "Joining from a
snapshot" what is signed:

- Every node signs its state hash at the attested apexes (`Engine.attest_every`) and keeps
  the newest (`quanta.node.persistence.attestations_persist`, from the engine worker's flush).
  `GET /api/constellation/attestation?apex=N` serves them.
- Any node serves its last snapshot (`served_snapshot`, `GET /api/constellation/snapshot`,
  read in one repeatable-read transaction, encoded once per snapshot apex) and its persisted
  quanta (`quanta_page`, `GET /api/constellation/quanta?after=N`).
- `join_from_snapshot` (`manage.py join_from_snapshot`) fills an empty database: it fetches a
  snapshot from one node (alpha), checks its settings against the settings chain signed from
  the pinned genesis id, replays the quanta up to the first attested apex at or above the
  snapshot's, and writes the state only if a majority of the auditors of the settings in force
  there signed the very state hash it computed. Nothing it was served is trusted before.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction

from constellation_client.chain import ChainError, fetch_chain_page, verify_genesis, verify_next
from quanta import gc_policy
from quanta.core.engine import Engine, QuantumMismatch
from quanta.core.keys import InvalidKey, KeyPair, decode_public_key, encode_public_key
from quanta.core.pending import PendingUpdates
from quanta.core.signatures import sign_digest
from quanta.core.state import ConstellationState
from quanta.core.state_snapshot import (
    SnapshotError,
    StateSnapshot,
    attestation_apex_at_or_above,
    attestation_digest,
    attested_by_majority,
    snapshot_decode,
    snapshot_encode,
)
from quanta.core.xdr.codec import XdrError, decode, encode
from quanta.core.xdr.schema import (
    ConstellationQuantum,
    ConstellationSettings,
    SignedQuantum,
)
from quanta.models import (
    QuantumRecord,
    SettingsRecord,
    SnapshotRecord,
    StateAttestationRecord,
)
from quanta.node.persistence import batch_persist
from quanta.node.snapshot import snapshot_state_load
from quanta.selectors import constellation_id, quanta_signed_after

QUANTA_PAGE = 500
SNAPSHOT_BYTES_MAX = 1 << 31
"""The largest snapshot a joining node reads (2 GiB: some 10 million accounts)."""
PAGE_BYTES_MAX = 64 * 1024 * 1024
HTTP_TIMEOUT_S = 60.0
POLL_S = 0.5
"""How often a joining node asks again for what is not there yet (the next attested apex is
not final, or a node has not signed it yet): a remote node's progress, nothing to await."""

_U32 = struct.Struct(">I")


# --- every node: its attestations, served ----------------------------------------------------


def attestation_json(apex: int, keypair: KeyPair) -> dict[str, object] | None:
    """Returns this node's attestation at `apex` as served (None: it has none there): the
    one its engine signed at an attested apex, else, when its snapshot is at `apex`, the
    snapshot's state hash signed now (its own engine computed it from the chain it executed;
    on an idle constellation every node's snapshot reaches the same apex)."""
    record = StateAttestationRecord.objects.filter(apex=apex).first()
    if record is not None:
        state_hash, signature = bytes(record.state_hash), bytes(record.signature)
    else:
        snapshot = SnapshotRecord.objects.filter(id=1, apex=apex).first()
        found = constellation_id()
        if snapshot is None or found is None:
            return None
        state_hash = bytes(snapshot.state_hash)
        signature = sign_digest(keypair, attestation_digest(found, apex, state_hash))
    return {
        "apex": apex,
        "public_key": encode_public_key(keypair.public_key),
        "state_hash": state_hash.hex(),
        "signature": base64.b64encode(signature).decode(),
    }


# --- any node: its snapshot and quanta, served -----------------------------------------------

_served_lock = threading.Lock()
_served: tuple[int, bytes] | None = None
"""The last snapshot served (its apex, its bytes): encoded once per snapshot apex."""


def served_snapshot() -> tuple[int, bytes] | None:
    """Returns this node's last snapshot (apex, bytes), None before its first one."""
    global _served
    with _served_lock:
        # One consistent read of every snapshot table (a batch may land meanwhile); inside a
        # caller's transaction (the tests'), that transaction's own view.
        outer = connection.in_atomic_block
        with transaction.atomic():
            if not outer:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            snapshot = SnapshotRecord.objects.filter(id=1).first()
            if snapshot is None:
                return None
            if _served is not None and _served[0] == int(snapshot.apex):
                return _served
            state = ConstellationState()
            snapshot_state_load(state, snapshot)
            genesis = SettingsRecord.objects.get(version=1)
            current = (
                SettingsRecord.objects.filter(apex__lte=snapshot.apex).order_by("-version").first()
            )
            assert current is not None, "a snapshot has settings in force"
        if state.state_hash() != bytes(snapshot.state_hash):
            raise SnapshotError("this node's snapshot does not match its state hash")
        genesis_settings = decode(ConstellationSettings, bytes(genesis.data))
        data = snapshot_encode(state, genesis_settings, int(current.apex))
        _served = (int(snapshot.apex), data)
        return _served


def quanta_page(after: int, limit: int = QUANTA_PAGE) -> bytes:
    """Returns up to `limit` (at most QUANTA_PAGE) persisted quanta above `after`, each as
    u32 length ‖ XDR of its `SignedQuantum` (alpha's and the auditors' signatures)."""
    count = max(1, min(limit, QUANTA_PAGE))
    return b"".join(_framed(encode(q)) for q in quanta_signed_after(after, count))


def _framed(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def quanta_unframed(data: bytes) -> list[SignedQuantum]:
    """Returns the quanta of a `quanta_page`; raises JoinError for bytes that do not decode."""
    quanta, offset = [], 0
    try:
        while offset < len(data):
            (size,) = _U32.unpack_from(data, offset)
            offset += 4
            if offset + size > len(data):
                raise JoinError("quanta page cut short")
            quanta.append(decode(SignedQuantum, data[offset : offset + size]))
            offset += size
    except (struct.error, XdrError) as error:
        raise JoinError(f"quanta page does not decode: {error}") from None
    return quanta


# --- the joining node ------------------------------------------------------------------------


class JoinError(Exception):
    """Why a join was refused (nothing was written)."""


@dataclass(frozen=True, slots=True)
class JoinReport:
    """What a join did."""

    snapshot_apex: int
    apex: int
    accounts: int
    replayed: int
    signers: int
    needed: int
    bytes_in: int
    seconds: float


class _Fetcher:
    """Bounded HTTP GETs that count the bytes they read."""

    def __init__(self) -> None:
        self.bytes_in = 0
        self.headers: dict[str, str] = {}
        """The headers of the last answer."""

    def get(self, url: str, limit: int) -> bytes | None:
        """Returns the body of a 200 answer, None for a 404 or 503 (not there yet)."""
        if not url.startswith(("http://", "https://")):
            raise JoinError(f"not an HTTP URL: {url!r}")
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
                body: bytes = response.read(limit + 1)
                self.headers = dict(response.headers.items())
        except urllib.error.HTTPError as error:
            if error.code in (404, 503):
                return None
            raise JoinError(f"{url}: HTTP {error.code} {error.reason}") from None
        except OSError as error:
            raise JoinError(f"{url}: {error}") from None
        self.bytes_in += len(body)
        if len(body) > limit:
            raise JoinError(f"{url}: answer over {limit} bytes refused")
        return body


def node_is_empty() -> str | None:
    """Returns why this node's database cannot take a snapshot (None: it is empty)."""
    if SnapshotRecord.objects.exists() or QuantumRecord.objects.exists():
        return "this node's database holds a chain already (a join fills an empty one)"
    if SettingsRecord.objects.exists():
        return "this node's database holds settings already (a join fills an empty one)"
    return None


def join_from_snapshot(
    url: str,
    pin: bytes,
    every: int,
    wait_s: float,
    say: Callable[[str], None] = lambda _: None,
) -> JoinReport:
    """Fills this node's empty database from the snapshot of the node at `url`, trusted only
    through the settings chain signed from `pin` and a majority's attestation; raises
    JoinError (nothing written) otherwise."""
    started = time.monotonic()
    deadline = started + wait_s
    # A snapshot rebuilds millions of objects at once: with the collector's defaults its
    # young-generation passes cost ~3x the decode itself (100 000 accounts: 16 s, not 5 s).
    gc_policy.settle()
    refusal = node_is_empty()
    if refusal is not None:
        raise JoinError(refusal)
    base = url.rstrip("/")
    fetcher = _Fetcher()
    data = fetcher.get(f"{base}/api/constellation/snapshot", SNAPSHOT_BYTES_MAX)
    if data is None:
        raise JoinError(f"{base} has no snapshot to serve yet")
    # Which apexes the nodes attest: the served node says (a wrong word only makes the join
    # wait for attestations that never come); else this node's own setting.
    every = _positive(fetcher.headers.get("X-Attest-Every"), every)
    try:
        snapshot = snapshot_decode(data)
    except SnapshotError as error:
        raise JoinError(f"snapshot refused: {error}") from None
    state = snapshot.state
    config = state.require_config()
    if config.constellation_id != pin:
        raise JoinError("the snapshot is of another constellation than the pinned genesis id")
    chain = _settings_chain(base, pin, fetcher)
    _check_settings(chain, config.settings, "snapshot")
    snapshot_apex = state.apex
    say(
        f"snapshot at apex {snapshot_apex}: {len(data)} bytes, {len(state.accounts)} accounts "
        f"({time.monotonic() - started:.1f} s)"
    )
    # Two apexes can be attested: the snapshot's own (every node's snapshot there: an idle
    # constellation) and the first attested apex at or above it (the quanta to it replayed).
    at_snapshot = _Attestations(config.settings, pin, snapshot_apex, snapshot.state_hash)
    target = attestation_apex_at_or_above(max(snapshot_apex, 1), every)
    replay = _Replay(base, state, target, snapshot.settings_apex)
    at_target: _Attestations | None = None
    while True:
        if at_snapshot.poll(fetcher):
            votes, target = at_snapshot, snapshot_apex
            snapshot = snapshot_decode(data)  # The state before any replay.
            state, settings_apex = snapshot.state, snapshot.settings_apex
            break
        if at_target is None and replay.step(fetcher):
            say(f"replayed up to apex {target} ({time.monotonic() - started:.1f} s)")
            settings = state.require_config().settings
            if settings.version not in chain:  # An update replayed since: read it again.
                chain = _settings_chain(base, pin, fetcher)
            _check_settings(chain, settings, f"apex {target}")
            at_target = _Attestations(settings, pin, target, state.state_hash())
        if at_target is not None and at_target.poll(fetcher):
            votes, settings_apex = at_target, replay.settings_apex
            break
        for attestations in (at_snapshot, at_target):
            # A majority's word on another hash is final: waiting would only run out the clock.
            contradiction = attestations.contradiction() if attestations else None
            if contradiction is not None:
                raise JoinError(contradiction)
        if time.monotonic() > deadline:
            raise JoinError(
                f"{at_snapshot.shortfall()}; "
                + (at_target.shortfall() if at_target else f"quantum {state.apex + 1} not served")
            )
        time.sleep(POLL_S)
    say(
        f"state hash at apex {target} attested by {votes.signers} of {len(votes.settings.auditors)}"
        f" ({time.monotonic() - started:.1f} s)"
    )
    _persist(state, snapshot, settings_apex)
    return JoinReport(
        snapshot_apex,
        target,
        len(state.accounts),
        target - snapshot_apex,
        votes.signers,
        votes.needed,
        fetcher.bytes_in,
        time.monotonic() - started,
    )


def _positive(text: str | None, default: int) -> int:
    try:
        value = int(text or "")
    except ValueError:
        return default
    return value if value > 0 else default


def _settings_chain(base: str, pin: bytes, fetcher: _Fetcher) -> dict[int, ConstellationSettings]:
    """Returns every settings version the chain proves from the pinned id, by version."""
    info_url = f"{base}/api/constellation/info"
    verified: dict[int, ConstellationSettings] = {}
    head = None
    after = 0
    try:
        while True:
            page = fetch_chain_page(info_url, after, HTTP_TIMEOUT_S)
            for envelope in page.envelopes:
                head = (
                    verify_genesis(pin, envelope) if head is None else verify_next(head, envelope)
                )
                assert head.settings is not None
                verified[head.version] = head.settings
                after = head.version
            if not page.more:
                break
    except ChainError as error:
        raise JoinError(f"settings chain refused: {error}") from None
    if not verified:
        raise JoinError("the node serves no settings chain")
    return verified


def _check_settings(
    chain: dict[int, ConstellationSettings], settings: ConstellationSettings, where: str
) -> None:
    if chain.get(settings.version) != settings:
        raise JoinError(
            f"the settings in force at the {where} (version {settings.version}) are not "
            "the ones the signed settings chain holds"
        )


class _Replay:
    """Replays the served quanta above the snapshot up to `target`, a page per step."""

    def __init__(self, base: str, state: ConstellationState, target: int, settings_apex: int):
        self.base = base
        self.state = state
        self.engine = Engine(state)
        self.target = target
        self.settings_apex = settings_apex
        """The apex the settings in force came in at."""

    def step(self, fetcher: _Fetcher) -> bool:
        """Replays what the next page brings; tells whether the target is reached."""
        state = self.state
        if state.apex < self.target:
            wanted = f"after={state.apex}&limit={min(self.target - state.apex, QUANTA_PAGE)}"
            page = fetcher.get(f"{self.base}/api/constellation/quanta?{wanted}", PAGE_BYTES_MAX)
            for signed in quanta_unframed(page or b"")[: self.target - state.apex]:
                try:
                    # Unverified on purpose: what counts is the state hash reached at `target`.
                    self.engine.replay(signed.quantum, verified=True)
                except QuantumMismatch as error:
                    raise JoinError(f"served quantum refused: {error}") from None
                if isinstance(signed.quantum.body, ConstellationQuantum):
                    self.settings_apex = state.apex
        return state.apex >= self.target


class _Attestations:
    """The signatures of one state hash at one apex gathered from the nodes of `settings`."""

    def __init__(
        self, settings: ConstellationSettings, constellation_id: bytes, apex: int, state_hash: bytes
    ) -> None:
        self.settings = settings
        self.constellation_id = constellation_id
        self.apex = apex
        self.state_hash = state_hash
        self.found: dict[bytes, bytes] = {}
        # Signatures of other state hashes at this apex: state hash -> public key -> signature.
        self.others: dict[bytes, dict[bytes, bytes]] = {}
        self.signers = 0
        self.needed = len(settings.auditors)

    def poll(self, fetcher: _Fetcher) -> bool:
        """Asks every node not heard yet once; tells whether a majority signed. A node that
        answered another hash is asked again (its signature is only checked when counted)."""
        for auditor in self.settings.auditors:
            key = auditor.public_key
            if key in self.found:
                continue
            address = auditor.address.rstrip("/")
            try:
                body = fetcher.get(
                    f"{address}/api/constellation/attestation?apex={self.apex}", 4096
                )
            except JoinError:
                continue  # That node is down or unreachable: the others may make a majority.
            attestation = _attestation_of(body, key)
            if attestation is None:
                continue
            state_hash, signature = attestation
            if state_hash == self.state_hash:
                self.found[key] = signature
            else:
                self.others.setdefault(state_hash, {})[key] = signature
        self.signers, self.needed = attested_by_majority(
            self.settings, self.constellation_id, self.apex, self.state_hash, self.found.items()
        )
        return self.signers >= self.needed

    def contradiction(self) -> str | None:
        """Says why the join must be refused now if a majority validly signed another state
        hash at this apex (the snapshot, or the quanta replayed on it, are not the majority's
        state: no answer still to come can change that); None otherwise."""
        for state_hash, signed in sorted(self.others.items()):
            signers, needed = attested_by_majority(
                self.settings, self.constellation_id, self.apex, state_hash, signed.items()
            )
            if signers >= needed:
                return (
                    f"the state hash at apex {self.apex} is {self.state_hash.hex()[:16]}… from "
                    f"what was served, but {signers} of {len(self.settings.auditors)} nodes "
                    f"({needed} needed) signed {state_hash.hex()[:16]}…: the served snapshot "
                    "or quanta differ from the majority's state, refused"
                )
        return None

    def shortfall(self) -> str:
        """Says why this apex is not trusted (yet)."""
        return (
            f"the state hash at apex {self.apex} ({self.state_hash.hex()[:16]}…) is signed by "
            f"{self.signers} of {len(self.settings.auditors)} nodes, {self.needed} needed: refused"
        )


def _attestation_of(body: bytes | None, key: bytes) -> tuple[bytes, bytes] | None:
    """Returns (state hash, signature) of a node's attestation answer if it is that node's
    (the signature is checked by whoever counts it); None for anything else (no answer yet,
    malformed)."""
    if body is None:
        return None
    try:
        answer = json.loads(body)
        if decode_public_key(answer["public_key"]) != key:
            return None
        state_hash = bytes.fromhex(answer["state_hash"])
        return state_hash, base64.b64decode(answer["signature"], validate=True)
    except (ValueError, KeyError, TypeError, InvalidKey, binascii.Error):
        return None


def _persist(state: ConstellationState, snapshot: StateSnapshot, settings_apex: int) -> None:
    """Writes the joined state as this node's snapshot (every row), with the genesis
    settings and those in force; no quantum row: this node signs none at or below it."""
    pending = PendingUpdates()
    pending.count = 1
    pending.accounts = {account.id for account in state.accounts}
    exchange = state.require_exchange()
    pending.orders = set(exchange.orders)
    pending.providers = set(state.cursors)
    pending.withdrawals = set(state.withdrawals)
    pending.fees_changed = True
    current = state.require_config().settings
    pending.settings = [(1, snapshot.genesis)]
    if current.version != 1:
        pending.settings.append((settings_apex, current))
    batch = pending.cut(state)
    with transaction.atomic():
        refusal = node_is_empty()
        if refusal is not None:
            raise JoinError(refusal)
        batch_persist(batch=batch)
