"""The fault simulator's long mode: many seeds, many steps, with the counts it checked.

Run from the repository root: `.venv/bin/python -m tools.simulate --seeds 2000 --steps 500`
(see docs/engine.md, "Fault simulator"). Each failing seed prints the schedule that
reproduces it; the exit status is 1 if any seed failed.
"""

from __future__ import annotations

import argparse
import time

from tests.simulation.nodes import Behaviour
from tests.simulation.scheduler import Options, Simulation, SimulationFailed


def _options(args: argparse.Namespace) -> Options:
    behaviour = Behaviour(
        old_rising=args.old_rising,
        old_payouts=args.old_payouts,
        auditor_flushes_before_catchup=not args.strict_timing,
        journal=not args.no_journal,
    )
    return Options(
        nodes=args.nodes,
        clients=args.clients,
        steps=args.steps,
        malicious=args.malicious,
        reorder=args.reorder,
        lose_signatures=args.lose_signatures,
        behaviour=behaviour,
        spares=args.spares,
        rotate_weight=args.rotate_weight,
        old_admission=args.old_admission,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1_000)
    parser.add_argument("--first", type=int, default=0, help="first seed")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--malicious", action="store_true", help="the last auditor lies")
    parser.add_argument("--reorder", action="store_true", help="reorder within a link")
    parser.add_argument("--lose-signatures", action="store_true", help="faults lose results")
    parser.add_argument(
        "--strict-timing",
        action="store_true",
        help="auditors may answer a rising alpha before their rows are flushed (the herald "
        "link before it asked its engine to flush)",
    )
    parser.add_argument("--old-rising", action="store_true", help="Rising before issue 15")
    parser.add_argument("--old-payouts", action="store_true", help="payouts before issue 15")
    parser.add_argument("--spares", type=int, default=2, help="followers a rotation brings in")
    parser.add_argument(
        "--rotate-weight", type=float, default=0.05, help="how often a rotation is proposed"
    )
    parser.add_argument(
        "--old-admission",
        action="store_true",
        help="herald admits persisted settings' keys only, update not gated (before issue 15)",
    )
    parser.add_argument(
        "--no-journal",
        action="store_true",
        help="alpha does not journal what it streams, so a crash forgets it (before group commit)",
    )
    parser.add_argument("--max-failures", type=int, default=3, help="schedules printed")
    return parser


def main() -> int:
    """Runs the seeds; prints each failure's schedule and the totals."""
    args = _parser().parse_args()
    options = _options(args)
    started = time.perf_counter()
    checks = steps = rotations = rotated = retired = 0
    failed: list[int] = []
    for seed in range(args.first, args.first + args.seeds):
        simulation = Simulation(options, seed)
        try:
            simulation.run()
        except SimulationFailed as failure:
            failed.append(seed)
            if len(failed) <= args.max_failures:
                print(failure, flush=True)
        steps += simulation.steps_applied
        checks += simulation.invariants.checks
        rotations += simulation.rotations
        proposal = simulation.proposal
        rotated += simulation.rotations - (
            proposal is not None and not simulation.rotated(proposal)
        )
        retired += len(simulation.retired)
    elapsed = time.perf_counter() - started
    print(
        f"seeds {args.seeds} (from {args.first}), steps {steps}, invariant checks {checks}, "
        f"rotations {rotations} (in force {rotated}, auditors retired {retired}), "
        f"failed {len(failed)} {failed[:20]}, {elapsed:.1f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
