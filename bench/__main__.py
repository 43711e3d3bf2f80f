"""``python -m bench``: the side-by-side benchmark and the decision micro-benchmark."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.decisions import DecisionTiming, time_decisions
from bench.memory import measure_footprint
from bench.report import write
from bench.run import run_once
from bench.workload import PRESETS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="medium")
    parser.add_argument("--contenders", default="vaclab,kube,roundrobin,dra")
    parser.add_argument("--arrivals", default="burst,steady", help="burst, steady or both")
    parser.add_argument("--rate", type=float, default=100.0, help="pods/s for steady arrival")
    parser.add_argument(
        "--decisions",
        default="100x10,1000x10,1000x50,5000x10,5000x50",
        help="NODESxPODS_PER_NODE list for the micro-benchmark ('' to skip); each size runs "
        "without and with inter-pod affinity and spread terms",
    )
    parser.add_argument(
        "--memory",
        default="5000x50000",
        help="NODESxPODS for the cache-memory measurement ('' to skip)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record vaclab's scheduler with py-spy during its runs, into OUT/profile-ARRIVAL "
        "(bench.profile; py-spy's own CPU makes those runs' figures unfit for comparison)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds one run may take (D places about 10 pods/s at 1000 nodes on 2 cores)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from tqdm import tqdm

    preset = PRESETS[args.preset]
    runs = []
    for arrival in [a for a in args.arrivals.split(",") if a]:
        for contender in [c for c in args.contenders.split(",") if c]:
            with tqdm(
                total=preset.pods,
                desc=f"{contender:>10} {arrival:<6}",
                unit="pod",
                file=sys.stderr,
                leave=True,
            ) as bar:

                def progress(done: int, total: int) -> None:
                    bar.n = done
                    bar.refresh()

                result = run_once(
                    contender,
                    preset,
                    arrival,
                    args.rate,
                    args.out / f"{contender}-{arrival}",
                    progress,
                    args.timeout,
                    profile_dir=args.out / f"profile-{arrival}" if args.profile else None,
                )
            runs.append(result.as_json())
    decisions: list[DecisionTiming] = []
    for item in [d for d in args.decisions.split(",") if d]:
        nodes, per_node = (int(x) for x in item.split("x"))
        for terms in (False, True):
            print(
                f"decision micro-benchmark: {nodes} nodes x {per_node} pods/node"
                + (", with affinity and spread terms" if terms else ""),
                file=sys.stderr,
            )
            decisions.append(time_decisions(nodes, per_node, terms=terms))
    footprint = None
    if args.memory:
        nodes, pods = (int(x) for x in args.memory.split("x"))
        print(f"memory: {nodes} nodes, {pods} pods in the scheduler's caches", file=sys.stderr)
        footprint = measure_footprint(nodes, pods)
    for path in write(args.out, runs, decisions, os.cpu_count() or 0, footprint):
        print(path)
    print((args.out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
