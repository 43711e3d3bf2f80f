"""``python -m tests.chaos --minutes 30 --seed 7``: a chaos soak from the command line
(``make chaos CHAOS_ARGS='...'``). Exits 1 if the auditor found a violation, 0 otherwise;
``--plan-only`` prints the seed's fault schedule without starting anything."""

from __future__ import annotations

import argparse
import logging
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.chaos.plan import FAULT_KINDS, parse_mix
from tests.chaos.rig import RigSettings
from tests.chaos.soak import SoakConfig, run_soak


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos",
        description="Seeded chaos soak of vaclab-scheduler (two replicas) and vaclab-accounting "
        "on a private control plane, with a continuous auditor of the books.",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, help="how long faults are injected")
    length.add_argument("--seconds", type=float, help="the same in seconds (default 60)")
    parser.add_argument("--seed", type=int, help="seed of the fault schedule (default: random)")
    parser.add_argument(
        "--faults",
        default="all",
        help="fault mix: 'all', 'kind,kind' or 'kind=weight,...'; kinds: " + ", ".join(FAULT_KINDS),
    )
    parser.add_argument(
        "--mean-interval", type=float, default=4.0, help="mean seconds between faults"
    )
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument(
        "--settle", type=float, default=60.0, help="seconds the quiet check may take"
    )
    parser.add_argument("--audit-interval", type=float, default=1.0)
    parser.add_argument(
        "--stale-tolerance",
        type=float,
        default=15.0,
        help="calm seconds a reservation may outlive its pod",
    )
    parser.add_argument(
        "--unbound-grace",
        type=float,
        default=10.0,
        help="the accounting controller's --unbound-reservation-grace",
    )
    parser.add_argument("--lease-duration", type=float, default=8.0)
    parser.add_argument("--renew-deadline", type=float, default=6.0)
    parser.add_argument("--retry-period", type=float, default=1.0)
    parser.add_argument(
        "--log-dir", type=Path, help="keep every log here (default: a temp dir, removed when clean)"
    )
    parser.add_argument(
        "--plan-only", action="store_true", help="print the fault schedule and exit"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    seconds = args.minutes * 60 if args.minutes is not None else args.seconds or 60.0
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    try:
        mix = parse_mix(args.faults)
    except ValueError as error:
        _parser().error(str(error))
    config = SoakConfig(
        seed=seed,
        seconds=seconds,
        mix=mix,
        mean_interval=args.mean_interval,
        rig=RigSettings(
            nodes=args.nodes,
            lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline,
            retry_period=args.retry_period,
            unbound_grace=args.unbound_grace,
            proxy_seconds=seconds + 1800,
        ),
        settle_seconds=args.settle,
        audit_interval=args.audit_interval,
        stale_seconds=args.stale_tolerance,
        log_dir=args.log_dir,
    )
    if args.plan_only:
        print(f"seed={seed} duration={seconds:g}s")
        for fault in config.plan():
            print(f"  {fault.describe()}")
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    report = run_soak(config, out=lambda line: print(line, flush=True))
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
