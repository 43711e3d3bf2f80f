"""The issue-17 goal checks of the benchmark report (bench.goals)."""

from __future__ import annotations

from typing import Any

from bench.decisions import DecisionTiming
from bench.goals import evaluate, markdown_lines
from bench.memory import MemoryFootprint


def run(contender: str, arrival: str, pods_s: float, p50: float, p99: float, **extra: Any) -> Any:
    return {
        "contender": contender,
        "arrival": arrival,
        "nodes": extra.pop("nodes", 1000),
        "throughput_pods_per_second": pods_s,
        "latency_p50_s": p50,
        "latency_p99_s": p99,
        **extra,
    }


def by_goal(checks: Any) -> dict[tuple[str, str], Any]:
    return {(c.goal, c.scope): c for c in checks}


def test_burst_ratios_against_b() -> None:
    checks = by_goal(
        evaluate(
            [
                run("vaclab", "burst", 300.0, 1.0, 2.0, scheduler_cpu_ms_per_pod=2.5),
                run("kube", "burst", 160.0, 1.0, 5.0),
                run("roundrobin", "burst", 400.0, 1.0, 1.0),
            ]
        )
    )
    assert set(checks) == {
        ("throughput A/B", "burst, 1000 nodes"),
        ("p99 latency A/B", "burst, 1000 nodes"),
        ("scheduler CPU per bound pod, A", "burst, 1000 nodes"),
    }
    throughput = checks["throughput A/B", "burst, 1000 nodes"]
    assert throughput.met
    assert throughput.measured == "1.88 (300.0 vs 160.0 pods/s)"
    assert checks["p99 latency A/B", "burst, 1000 nodes"].met  # 0.4
    assert not checks["scheduler CPU per bound pod, A", "burst, 1000 nodes"].met


def test_burst_just_below_the_goal_is_not_met() -> None:
    checks = by_goal(
        evaluate([run("vaclab", "burst", 149.0, 1.0, 5.1), run("kube", "burst", 100.0, 1.0, 10.0)])
    )
    assert not checks["throughput A/B", "burst, 1000 nodes"].met
    assert not checks["p99 latency A/B", "burst, 1000 nodes"].met


def test_large_cluster_has_its_own_throughput_goal_and_no_p99_goal() -> None:
    checks = by_goal(
        evaluate(
            [
                run("vaclab", "burst", 125.0, 1.0, 50.0, nodes=5000),
                run("kube", "burst", 100.0, 1.0, 60.0, nodes=5000),
            ]
        )
    )
    assert list(checks) == [("throughput A/B", "burst, 5000 nodes")]
    assert checks["throughput A/B", "burst, 5000 nodes"].met  # 1.25 >= 1.2


def test_steady_p50_and_p99_ratio() -> None:
    checks = by_goal(
        evaluate(
            [
                run("vaclab", "steady", 99.0, 0.025, 0.09),
                run("kube", "steady", 99.0, 0.006, 0.044),
            ]
        )
    )
    p50 = checks["p50 latency of A", "steady, 1000 nodes"]
    assert (p50.met, p50.measured) == (False, "25 ms")
    assert not checks["p99 latency A/B", "steady, 1000 nodes"].met  # 2.05


def test_without_a_only_decisions_and_memory_are_checked() -> None:
    decisions = [
        DecisionTiming(5000, 10, 200, 0.6, 0.9, 600.0),
        DecisionTiming(5000, 10, 200, 0.8, 1.5, 600.0, terms=True),
        DecisionTiming(5000, 50, 200, 1.5, 1.9, 1000.0),
        DecisionTiming(1000, 10, 200, 5.0, 9.0, 500.0),
    ]
    checks = evaluate(
        [run("kube", "burst", 1.0, 1.0, 1.0)], decisions, MemoryFootprint(5000, 50000, 401.0, 50.0)
    )
    assert [(c.scope, c.met) for c in checks] == [
        ("5000 nodes x 10 pods/node", True),
        ("5000 nodes x 50 pods/node", False),  # fast, but fewer nodes examined than before
        ("5000 nodes, 50000 pods", False),
    ]
    assert evaluate([], [], MemoryFootprint(100, 1000, 900.0, 50.0)) == []


def test_markdown_lines() -> None:
    checks = evaluate(
        [run("vaclab", "steady", 99.0, 0.010, 0.05), run("kube", "steady", 99.0, 0.006, 0.044)]
    )
    lines = markdown_lines(checks)
    assert lines[1] == "Goals of issue 17 covered by this run: 2 of 2 met."
    assert lines[3] == "| goal | where | target | measured | |"
    assert (
        lines[5]
        == "| p99 latency A/B | steady, 1000 nodes | <= 2.0 | 1.14 (0.05 vs 0.044 s) | met |"
    )
    assert markdown_lines([]) == []
