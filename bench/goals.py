"""The speed goals of issue 17, checked against one benchmark run: met or not, with the
figures measured. Only the goals whose runs the benchmark made are checked.

Ratios compare contender A (vaclab) with B (kube-scheduler with extended resources) in the
same run, since absolute figures vary by machine. The goals are stated for the medium preset
(1000 nodes) and a 5000-node run; runs of other sizes are checked against the goals of the
nearest: below 5000 nodes those of 1000 nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.decisions import DecisionTiming
from bench.memory import MemoryFootprint

A, B = "vaclab", "kube"
LARGE_NODES = 5000
"""From this many nodes, the large-cluster throughput goal applies instead of the burst ones."""

BURST_THROUGHPUT_A_OVER_B = 1.5
BURST_P99_A_OVER_B = 0.5
LARGE_THROUGHPUT_A_OVER_B = 1.2
STEADY_P50_S = 0.020
STEADY_P99_A_OVER_B = 2.0
CPU_MS_PER_POD = 2.0
MEMORY_MIB = 400.0
MEMORY_SIZE = (5000, 50000)
DECISION_P99_MS = {(5000, 10): 1.0, (5000, 50): 2.0}
"""Decision p99 by (nodes, pods per node), pods without inter-pod terms."""
NODES_EXAMINED_AT_LEAST = {(5000, 10): 579, (5000, 50): 1473}
"""The nodes examined per decision when the goals were set: not fewer."""


@dataclass(frozen=True, slots=True)
class Check:
    goal: str
    scope: str
    target: str
    measured: str
    met: bool


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


def _run_checks(runs: Sequence[dict[str, Any]]) -> list[Check]:
    checks: list[Check] = []
    keys = sorted({(r["arrival"], r["nodes"]) for r in runs})
    for arrival, nodes in keys:
        by = {r["contender"]: r for r in runs if (r["arrival"], r["nodes"]) == (arrival, nodes)}
        scope = f"{arrival}, {nodes} nodes"
        a, b = by.get(A), by.get(B)
        if a is None:
            continue
        if b is not None:
            throughput = _ratio(a["throughput_pods_per_second"], b["throughput_pods_per_second"])
            measured = (
                f"{throughput:.2f} ({a['throughput_pods_per_second']} vs "
                f"{b['throughput_pods_per_second']} pods/s)"
            )
            p99 = _ratio(a["latency_p99_s"], b["latency_p99_s"])
            p99_measured = f"{p99:.2f} ({a['latency_p99_s']} vs {b['latency_p99_s']} s)"
            if arrival == "burst" and nodes >= LARGE_NODES:
                target = LARGE_THROUGHPUT_A_OVER_B
                checks.append(
                    Check("throughput A/B", scope, f">= {target}", measured, throughput >= target)
                )
            elif arrival == "burst":
                target = BURST_THROUGHPUT_A_OVER_B
                checks.append(
                    Check("throughput A/B", scope, f">= {target}", measured, throughput >= target)
                )
                checks.append(
                    Check(
                        "p99 latency A/B",
                        scope,
                        f"<= {BURST_P99_A_OVER_B}",
                        p99_measured,
                        p99 <= BURST_P99_A_OVER_B,
                    )
                )
            elif arrival == "steady":
                checks.append(
                    Check(
                        "p99 latency A/B",
                        scope,
                        f"<= {STEADY_P99_A_OVER_B}",
                        p99_measured,
                        p99 <= STEADY_P99_A_OVER_B,
                    )
                )
        if arrival == "steady":
            p50_ms = 1000 * a["latency_p50_s"]
            checks.append(
                Check(
                    "p50 latency of A",
                    scope,
                    f"<= {1000 * STEADY_P50_S:.0f} ms",
                    f"{p50_ms:.0f} ms",
                    a["latency_p50_s"] <= STEADY_P50_S,
                )
            )
        cpu = a.get("scheduler_cpu_ms_per_pod")
        if cpu is not None:
            checks.append(
                Check(
                    "scheduler CPU per bound pod, A",
                    scope,
                    f"<= {CPU_MS_PER_POD} ms",
                    f"{cpu:.2f} ms",
                    cpu <= CPU_MS_PER_POD,
                )
            )
    return checks


def _decision_checks(decisions: Sequence[DecisionTiming]) -> list[Check]:
    checks = []
    for d in decisions:
        size = (d.nodes, d.pods_per_node)
        if d.terms or size not in DECISION_P99_MS:
            continue
        limit, least = DECISION_P99_MS[size], NODES_EXAMINED_AT_LEAST[size]
        checks.append(
            Check(
                "decision p99 (no inter-pod terms)",
                f"{d.nodes} nodes x {d.pods_per_node} pods/node",
                f"<= {limit} ms, >= {least} nodes examined",
                f"{d.p99_ms:.2f} ms, {d.nodes_examined_mean:.0f} nodes examined",
                d.p99_ms <= limit and d.nodes_examined_mean >= least,
            )
        )
    return checks


def evaluate(
    runs: Sequence[dict[str, Any]],
    decisions: Sequence[DecisionTiming] = (),
    footprint: MemoryFootprint | None = None,
) -> list[Check]:
    """Every goal the measurements cover, in the order of the issue."""
    checks = _run_checks(runs) + _decision_checks(decisions)
    if footprint is not None and (footprint.nodes, footprint.pods) == MEMORY_SIZE:
        checks.append(
            Check(
                "scheduler caches, peak RSS",
                f"{footprint.nodes} nodes, {footprint.pods} pods",
                f"<= {MEMORY_MIB:.0f} MiB",
                f"{footprint.peak_rss_mib:.0f} MiB",
                footprint.peak_rss_mib <= MEMORY_MIB,
            )
        )
    return checks


def markdown_lines(checks: Sequence[Check]) -> list[str]:
    """The checks as a Markdown section (none if nothing was checked)."""
    if not checks:
        return []
    met = sum(c.met for c in checks)
    return [
        "",
        f"Goals of issue 17 covered by this run: {met} of {len(checks)} met.",
        "",
        "| goal | where | target | measured | |",
        "|---|---|---|---|---|",
        *(
            f"| {c.goal} | {c.scope} | {c.target} | {c.measured} | "
            f"{'met' if c.met else '**not met**'} |"
            for c in checks
        ),
    ]
