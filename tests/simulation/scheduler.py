"""The seeded scheduler: picks each step's event with `random.Random(seed)`, applies it to
the simulated constellation, checks the invariants, and keeps the schedule (the list of
events), which alone reproduces the run (`Simulation.replay`).

A run: boot (alpha initializes, auditors connect); `steps` steps of faults and traffic; a
quiet tail (every node restarted and connected, messages delivered in order, flushes) that
must converge; new requests that must finalize.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from quanta.core.signatures import constellation_id_of, majority
from quanta.core.status import ConstellationError
from quanta.core.testing import (
    PROVIDER_ID,
    default_settings,
    keypair,
    settings_quantum,
    sign_message,
)
from quanta.core.xdr.schema import (
    AuditorSettings,
    ConstellationMessageEnvelope,
    ConstellationSettings,
    PaymentRequest,
    WithdrawalRequest,
)

from .invariants import InvariantBroken, Invariants
from .network import ALPHA, Hello, Network, Results
from .nodes import Behaviour, SimAlpha, SimAuditor
from .vault import Vault

Event = tuple[str | int, ...]
UNIT = 10_000_000
START_MS = 1_000_000
STEP_MS = 10
QUIET_ROUNDS_MAX = 40
DELIVERIES_PER_ROUND_MAX = 5_000


@dataclass(slots=True)
class Options:
    """The shape of one run."""

    nodes: int = 3
    clients: int = 3
    steps: int = 300
    malicious: bool = False
    lagging: bool = True
    reorder: bool = False
    """Deliver a link's messages out of order (a WebSocket never does; off by default)."""
    lose_signatures: bool = False
    """Let faults lose an auditor's results in flight (a dropped frame on its way to alpha,
    an auditor crashing with results unsent). Off in CI: an auditor never signs a quantum
    again, so such a loss leaves it unfinal for good (docs/engine.md, "Fault simulator")."""
    behaviour: Behaviour = field(default_factory=Behaviour)
    spares: int = 2
    """Nodes beyond the genesis ones, running from the start as followers (no genesis lists
    them): a rotation brings them in as auditors."""
    rotate_weight: float = 0.05
    """How often a rotation is proposed (a step's weight; 0: never on its own)."""
    old_admission: bool = False
    """The herald admits only the keys of the settings persisted as final, and alpha executes
    an update without checking that its new auditors can finalize it (before issue 15)."""


@dataclass(slots=True)
class Proposal:
    """A settings update the operator posted (signed by a majority of the auditors in force),
    retried until it is final and persisted at alpha; then `leaving` may be shut down."""

    envelope: ConstellationMessageEnvelope
    settings: ConstellationSettings
    leaving: tuple[int, ...]
    refused: str = ""


class SimulationFailed(AssertionError):  # noqa: N818 - a verdict, named as one
    """An invariant broke (or a node crashed on its own); carries the reproducing schedule."""

    def __init__(self, seed: int | None, schedule: list[Event], cause: BaseException) -> None:
        """Keeps the seed, the schedule up to the failure and the cause."""
        self.seed, self.schedule, self.cause = seed, schedule, cause
        lines = [f"  {i}: {event}" for i, event in enumerate(schedule)]
        super().__init__(
            f"seed {seed}: {type(cause).__name__}: {cause}\n"
            f"schedule ({len(schedule)} events):\n" + "\n".join(lines[-60:])
        )


class Simulation:
    """One constellation under one schedule."""

    def __init__(self, options: Options, seed: int | None = None) -> None:
        """Builds the nodes, the network, the vault and the clients (not yet booted)."""
        self.options, self.seed = options, seed
        self.rng = random.Random(seed)
        everyone = options.nodes + options.spares
        keys = [keypair(200 + i) for i in range(everyone)]
        self.keys = keys
        self.index_of = {k.public_key: i for i, k in enumerate(keys)}
        # The vault's signers are every node that is ever an auditor (indexed like the nodes):
        # the operator's move of the vault's signers at a rotation is not simulated.
        self.vault = Vault([k.public_key for k in keys], majority(options.nodes))
        self.network = Network(everyone)
        b = options.behaviour
        self.alpha = SimAlpha(ALPHA, keys[0], self.vault, self.network, b)
        self.auditors = [
            SimAuditor(i, keys[i], self.vault, self.network, b) for i in range(1, everyone)
        ]
        if options.malicious:
            self.auditors[options.nodes - 2].malicious = True
        if options.lagging:
            self.auditors[0].lagging = True
        self.clients = [keypair(1 + i) for i in range(options.clients)]
        self.nonces = [0] * options.clients
        self.schedule: list[Event] = []
        self.steps_applied = 0
        self.invariants = Invariants(self.alpha, self.auditors, majority(options.nodes))
        self.quiet = False
        self.proposal: Proposal | None = None
        self.removed: set[int] = set()  # auditors removed by earlier rotations
        self.rotations = 0  # settings updates proposed (each brings version + 1)
        self.fresh = list(range(options.nodes, everyone))  # spares never brought in yet
        self.retired: set[int] = set()  # shut down for good after their rotation
        self.bound: set[int] = set()  # auditors whose handshake alpha's herald admitted

    @property
    def now_ms(self) -> int:
        """Returns the simulated clock: each event takes STEP_MS."""
        return START_MS + STEP_MS * self.steps_applied

    def _node(self, index: int) -> SimAlpha | SimAuditor:
        return self.alpha if index == ALPHA else self.auditors[index - 1]

    # --- running ----------------------------------------------------------------------------

    def run(self) -> Invariants:
        """Runs boot, random steps and the quiet tail; raises SimulationFailed."""
        try:
            self._boot()
            for _ in range(self.options.steps):
                self.apply(self._pick())
            self._quiet_tail()
        except (InvariantBroken, Exception) as error:
            raise SimulationFailed(self.seed, self.schedule, error) from error
        return self.invariants

    def replay(self, schedule: Sequence[Event]) -> Invariants:
        """Applies a given schedule after the boot (a failing seed's, or one written by hand),
        then the quiet tail if the schedule has none; raises SimulationFailed."""
        try:
            self._boot()
            for event in schedule:
                self.apply(event)
            if not self.quiet:
                self._quiet_tail()
        except (InvariantBroken, Exception) as error:
            raise SimulationFailed(self.seed, self.schedule, error) from error
        return self.invariants

    def _boot(self) -> None:
        self.alpha.start()
        for auditor in self.auditors:
            auditor.start()
        founders = self.keys[: self.options.nodes]
        genesis = default_settings(founders)
        self.constellation_id = constellation_id_of(genesis)
        envelope = settings_quantum(genesis, founders).update
        self.alpha.initialize(envelope, self.now_ms)
        self.alpha.flush(self.now_ms)
        for auditor in self.auditors:
            if self._admitted(auditor.index):
                self._connect(auditor)
        # Faults start once the genesis quantum is final and persisted: before, a crash of
        # alpha forgets the initialization (its snapshot does not exist yet).
        self._settle()
        for client in range(len(self.clients)):
            self.vault.deposit(self.clients[client], "USD", 100 * UNIT)
        self.schedule = []  # The boot is the same for every run: a schedule starts after it.

    def apply(self, event: Event) -> None:
        """Applies one event if it can happen now (else it is a no-op), then checks."""
        self.schedule.append(event)
        self.steps_applied += 1
        kind, *args = event
        handler = getattr(self, f"_on_{kind}")
        handler(*args)
        self.invariants.after_step()

    # --- choosing an event -------------------------------------------------------------------

    def _pick(self) -> Event:
        rng = self.rng
        choices: list[tuple[float, Event]] = []
        for src, dst in self.network.busy():
            slow = 0.2 if self._node(src if dst == ALPHA else dst).lagging else 1.0
            queue = len(self.network.queues[(src, dst)])
            index = rng.randrange(queue) if self.options.reorder else 0
            choices += [(30 * slow, ("deliver", src, dst, index)), (0.8, ("dup", src, dst, index))]
            if self._may_break(src if dst == ALPHA else dst):
                choices.append((0.8, ("drop", src, dst, index)))
        choices += self._node_events()
        choices += self._client_events()
        weights, events = zip(*choices, strict=True)
        event: Event = rng.choices(events, weights)[0]
        return event

    def _node_events(self) -> list[tuple[float, Event]]:
        choices: list[tuple[float, Event]] = []
        for node in (self.alpha, *self.auditors):
            if node.index in self.retired:
                continue
            if node.node is None:
                choices.append((3.0, ("restart", node.index)))
                continue
            if node is self.alpha or self._may_break(node.index):
                choices.append((0.2, ("crash", node.index)))
            choices.append((2.0 if node.lagging else 6.0, ("flush", node.index)))
            if node is not self.alpha and node.index not in self.network.up:
                if self._admitted(node.index):  # else it would be refused at its handshake
                    choices.append((4.0, ("connect", node.index)))
        if self.alpha.node is not None:
            choices += [(6.0, ("stream",)), (3.0, ("poll",)), (3.0, ("payouts",))]
        choices += self._rotation_events()
        return choices

    def _rotation_events(self) -> list[tuple[float, Event]]:
        proposal = self.proposal
        if proposal is not None and not self.rotated(proposal):
            return [(2.0, ("update",))]
        choices: list[tuple[float, Event]] = [
            (1.0, ("retire", i)) for i in sorted(self._removed() - self.retired)
        ]
        alpha = self.alpha.node
        if alpha is None or not self.fresh or not self.options.rotate_weight:
            return choices
        members = [
            self.index_of[key]
            for key in alpha.engine.state.require_config().auditor_keys
            if key != self.alpha.keypair.public_key
        ]
        count = self.rng.choice((1, 2)) if len(self.fresh) >= 2 else 1
        out = self.rng.sample(members, min(count, len(members)))
        event: list[str | int] = ["rotate"]
        for old, new in zip(out, self.fresh, strict=False):
            event += [old, new]
        return [*choices, (self.options.rotate_weight, tuple(event))]

    def _may_break(self, auditor: int) -> bool:
        """Tells whether a fault may break this auditor's link (losing what is in flight)."""
        in_flight = self.network.queues[(auditor, ALPHA)]
        return self.options.lose_signatures or not any(isinstance(m, Results) for m in in_flight)

    def _client_events(self) -> list[tuple[float, Event]]:
        choices: list[tuple[float, Event]] = []
        for client in range(len(self.clients)):
            other = (client + 1) % len(self.clients)
            choices += [
                (2.0, ("pay", client, other)),
                (1.0, ("withdraw", client)),
                (0.3, ("faucet", client)),
            ]
        return choices

    # --- events ------------------------------------------------------------------------------

    def _on_deliver(self, src: int, dst: int, index: int) -> None:
        queue = self.network.queues[(src, dst)]
        if index >= len(queue):
            return
        message = self.network.take(src, dst, index)
        if dst == ALPHA:
            if isinstance(message, Hello):
                if not self._admitted(src):
                    self.network.disconnect(src)  # the herald refuses the handshake
                    return
                self.bound.add(src)
            self.alpha.handle(src, message)
        else:
            self.auditors[dst - 1].handle(message, self.now_ms)

    def _on_drop(self, src: int, dst: int, index: int) -> None:
        if index < len(self.network.queues[(src, dst)]):
            self.network.disconnect(dst if src == ALPHA else src)

    def _on_dup(self, src: int, dst: int, index: int) -> None:
        if index < len(self.network.queues[(src, dst)]):
            self.network.duplicate(src, dst, index)

    def _on_crash(self, index: int) -> None:
        if self._node(index).node is not None:
            self._node(index).crash()

    def _on_restart(self, index: int) -> None:
        node = self._node(index)
        if node.node is not None or index in self.retired:
            return
        node.start()
        if isinstance(node, SimAuditor) and self.alpha.node is not None:
            self._connect(node)

    def _on_connect(self, index: int) -> None:
        auditor = self.auditors[index - 1]
        if auditor.node is not None and self.alpha.node is not None:
            if index not in self.network.up:
                self._connect(auditor)

    def _connect(self, auditor: SimAuditor) -> None:
        self.bound.discard(auditor.index)  # bound again once its handshake is admitted
        auditor.connect()

    # --- rotation ----------------------------------------------------------------------------

    def _admitted(self, index: int) -> bool:
        """Tells whether alpha's herald admits the auditor's key now (`herald_admission`):
        the keys of the settings in force at alpha's engine, of the last settings persisted
        as final, and of a posted update; under the old rule, the persisted ones alone."""
        alpha = self.alpha
        keys: set[bytes] = set()
        if alpha.store.settings:
            keys.update(
                a.public_key for a in alpha.store.settings[max(alpha.store.settings)][1].auditors
            )
        if not self.options.old_admission:
            if alpha.node is not None and alpha.node.engine.state.config is not None:
                keys.update(alpha.node.engine.state.config.auditor_keys)
                keys.update(alpha.node.signers_still_needed())
            if self.proposal is not None and not self.rotated(self.proposal):
                keys.update(a.public_key for a in self.proposal.settings.auditors)
        keys.discard(alpha.keypair.public_key)
        return self.keys[index].public_key in keys

    def _removed(self) -> set[int]:
        """Returns the auditors the rotations in force removed (the operator may stop them)."""
        proposal = self.proposal
        if proposal is not None and self.rotated(proposal):
            return self.removed | set(proposal.leaving)
        return self.removed

    def rotated(self, proposal: Proposal) -> bool:
        """Tells whether the update and every quantum below it are final and persisted at
        alpha (the operator's answer, `EngineWorker.reply_when_final`)."""
        recorded = self.alpha.store.settings.get(proposal.settings.version)
        if recorded is None:
            return False
        if self.options.old_admission:
            return True
        persisted = getattr(self.alpha, "persisted", None)  # Alpha's, as of its last run.
        return persisted is not None and recorded[0] <= persisted.apex

    def _on_rotate(self, *pairs: int) -> None:
        """The operator posts an update replacing auditor `pairs[0]` by node `pairs[1]` (and so
        on), signed by a majority of the auditors in force, offline."""
        alpha = self.alpha.node
        if alpha is None or (self.proposal is not None and not self.rotated(self.proposal)):
            return
        self.removed = self._removed()
        current = alpha.engine.state.require_config()
        replace = dict(zip(pairs[::2], pairs[1::2], strict=True))
        if any(new not in self.fresh for new in replace.values()):
            return
        auditors = []
        for auditor in current.settings.auditors:
            index = self.index_of[auditor.public_key]
            if index in replace:
                index = replace[index]
                auditor = AuditorSettings(self.keys[index].public_key, f"node-{index}")
            auditors.append(auditor)
        settings = dataclasses.replace(
            current.settings, version=current.settings.version + 1, auditors=tuple(auditors)
        )
        signers = [self.keys[self.index_of[k]] for k in current.auditor_keys][: current.majority]
        quantum = settings_quantum(
            settings, signers, settings.version, constellation_id=current.constellation_id
        )
        self.proposal = Proposal(quantum.update, settings, tuple(replace))
        self.fresh = [i for i in self.fresh if i not in replace.values()]
        self.rotations += 1

    def _on_update(self) -> None:
        """The web process asks alpha's engine to execute the posted update (it retries)."""
        proposal, alpha = self.proposal, self.alpha.node
        if proposal is None or alpha is None or self.rotated(proposal):
            return
        presence_ms = None
        if not self.options.old_admission:
            # What alpha's herald told its engine: each bound auditor and its state.
            presence_ms = self.now_ms
            alpha.presence.seen.clear()
            for index in sorted(self.bound & self.network.up):
                node = self.auditors[index - 1].node
                if node is not None:
                    key = self.keys[index].public_key
                    status = node.status
                    alpha.presence.report(key, str(index), status.state, status.reason, presence_ms)
        try:
            # As the worker: the settings are on disk as unfinal before the update executes.
            settings = alpha.update_check(proposal.envelope, presence_ms)
            recorded = self.options.behaviour.unfinal_settings_recorded
            if recorded and not self.options.old_admission:
                self.alpha.store.unfinal_settings_persist(settings)
            alpha.update_settings(proposal.envelope, self.now_ms, presence_ms)
        except ConstellationError as error:
            proposal.refused = str(error)
            return
        self.alpha.note_chain()

    def _on_retire(self, index: int) -> None:
        """The operator shuts down an auditor a rotation removed, once it is final."""
        if index not in self._removed() or index in self.retired:
            return
        self.retired.add(index)
        if self.auditors[index - 1].node is not None:
            self.auditors[index - 1].crash()

    def _on_flush(self, index: int) -> None:
        node = self._node(index)
        if node.node is not None:
            node.flush(self.now_ms)

    def _on_stream(self) -> None:
        if self.alpha.node is not None:
            self.alpha.stream(self.now_ms)

    def _on_poll(self) -> None:
        if self.alpha.node is not None:
            self.alpha.poll(self.now_ms)

    def _on_payouts(self) -> None:
        if self.alpha.node is not None:
            self.alpha.payouts(self.now_ms)

    def _on_faucet(self, client: int) -> None:
        self.vault.deposit(self.clients[client], "USD", 20 * UNIT)

    def _on_pay(self, client: int, other: int) -> None:
        key = self.clients[client]
        request = PaymentRequest(
            self._nonce(client),
            key.public_key,
            self.nonces[client],
            "USD",
            UNIT // 10,
            self.clients[other].public_key,
        )
        self._submit(request, client)

    def _on_withdraw(self, client: int) -> None:
        key = self.clients[client]
        request = WithdrawalRequest(
            self._nonce(client),
            key.public_key,
            self.nonces[client],
            PROVIDER_ID,
            "USD",
            UNIT // 5,
            f"EXT-{client}",
            0,
        )
        self._submit(request, client)

    def _nonce(self, client: int) -> int:
        self.nonces[client] += 1
        return self.nonces[client]

    def _submit(self, request: PaymentRequest | WithdrawalRequest, client: int) -> None:
        if self.alpha.node is not None:
            self.alpha.submit(
                sign_message(request, self.clients[client], self.constellation_id), self.now_ms
            )

    def _on_quiet(self) -> None:
        self.quiet = True

    def _on_round(self) -> None:
        """One fair round of the quiet tail: stream, deliver everything in order, flush all,
        poll and pay out (and the operator's posted update asked for again)."""
        self._on_update()
        self._on_stream()
        for _ in range(DELIVERIES_PER_ROUND_MAX):
            busy = self.network.busy()
            if not busy:
                break
            self._on_deliver(*busy[0], 0)
            self._on_stream()
        for node in (self.alpha, *self.auditors):
            self._on_flush(node.index)
        self._on_poll()
        self._on_payouts()

    # --- the quiet tail ---------------------------------------------------------------------

    def _quiet_tail(self) -> None:
        self.apply(("quiet",))
        for node in (self.alpha, *self.auditors):
            if node.index not in self.retired:
                self.apply(("restart", node.index))
        self._connect_admitted()
        self._settle()
        requested_above = self.alpha.engine_apex()
        for client in range(len(self.clients)):
            self.apply(("pay", client, (client + 1) % len(self.clients)))
        self._settle()
        self.invariants.live(requested_above)
        self.invariants.rotated(
            1 + self.rotations, None if self.proposal is None else self.proposal.refused
        )
        self.invariants.converged()

    def _connect_admitted(self) -> None:
        """Connects every live auditor the herald admits (a rotation may have changed who)."""
        for auditor in self.auditors:
            if auditor.node is not None and auditor.index not in self.network.up:
                if self._admitted(auditor.index):
                    self.apply(("connect", auditor.index))

    def _settle(self) -> None:
        for _ in range(QUIET_ROUNDS_MAX):
            before = self._fingerprint()
            self.apply(("round",))
            self._connect_admitted()
            if self._fingerprint() == before and not self.network.busy():
                return

    def _fingerprint(self) -> tuple[object, ...]:
        nodes = (self.alpha, *self.auditors)
        return (
            tuple(
                None if n.node is None else (n.node.engine.state.apex, n.node.status.state)
                for n in nodes
            ),
            len(self.alpha.store.rows),
            len(self.vault.entries),
            None if self.alpha.node is None else len(self.alpha.node.unfinalized),
            None if self.proposal is None else self.rotated(self.proposal),
            tuple(sorted(self.network.up)),
        )
