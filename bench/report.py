"""Benchmark results as JSON, a Markdown table and a PNG plot of pods bound over time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.decisions import DecisionTiming
from bench.memory import MemoryFootprint

COLUMNS = (
    ("contender", "contender"),
    ("arrival", "arrival"),
    ("nodes", "nodes"),
    ("bound", "pods bound"),
    ("throughput_pods_per_second", "pods/s"),
    ("latency_p50_s", "p50 s"),
    ("latency_p90_s", "p90 s"),
    ("latency_p99_s", "p99 s"),
    ("oversubscribed_nodes", "oversubscribed nodes"),
    ("api_requests_per_pod", "API requests/pod"),
    ("scheduler_cpu_seconds", "scheduler CPU s"),
    ("scheduler_peak_rss_mib", "peak RSS MiB"),
)


def markdown(
    runs: Sequence[dict[str, Any]],
    decisions: Sequence[DecisionTiming],
    cores: int,
    footprint: MemoryFootprint | None = None,
) -> str:
    lines = [
        f"# Benchmark ({cores} cores)",
        "",
        "| " + " | ".join(t for _, t in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for run in runs:
        lines.append("| " + " | ".join(str(run[key]) for key, _ in COLUMNS) + " |")
    ratios = _ratios(runs)
    if ratios:
        lines += [
            "",
            "| arrival | throughput A/B | throughput A/C | p99 A/B |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {a} | {r.get('a_over_b', '-')} | {r.get('a_over_c', '-')} "
            f"| {r.get('p99_a_over_b', '-')} |"
            for a, r in ratios.items()
        ]
    if decisions:
        lines += [
            "",
            "Decision time (CPU, no API):",
            "",
            "| nodes | pods/node | mean ms | p99 ms | nodes examined |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {d.nodes} | {d.pods_per_node} | {d.mean_ms:.2f} | {d.p99_ms:.2f} | "
            f"{d.nodes_examined_mean:.0f} |"
            for d in decisions
        ]
    if footprint is not None:
        lines += [
            "",
            f"Scheduler caches and state for {footprint.nodes} nodes and {footprint.pods} pods: "
            f"peak RSS {footprint.peak_rss_mib:.0f} MiB "
            f"(process baseline {footprint.baseline_rss_mib:.0f} MiB).",
        ]
    lines += [
        "",
        "A = vaclab scheduler + accounting, B = kube-scheduler with extended resources, "
        "C = round-robin binder (the apiserver's ceiling; its CPU and RSS include the harness).",
    ]
    return "\n".join(lines) + "\n"


def _ratios(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    result: dict[str, dict[str, float]] = {}
    for arrival in sorted({r["arrival"] for r in runs}):
        by = {r["contender"]: r for r in runs if r["arrival"] == arrival}
        if "vaclab" not in by:
            continue
        entry: dict[str, float] = {}
        a = by["vaclab"]
        if "kube" in by:
            entry["a_over_b"] = round(
                a["throughput_pods_per_second"]
                / max(1e-9, by["kube"]["throughput_pods_per_second"]),
                2,
            )
            entry["p99_a_over_b"] = round(
                a["latency_p99_s"] / max(1e-9, by["kube"]["latency_p99_s"]), 2
            )
        if "roundrobin" in by:
            entry["a_over_c"] = round(
                a["throughput_pods_per_second"]
                / max(1e-9, by["roundrobin"]["throughput_pods_per_second"]),
                2,
            )
        result[arrival] = entry
    return result


def write(
    out: Path,
    runs: Sequence[dict[str, Any]],
    decisions: Sequence[DecisionTiming],
    cores: int,
    footprint: MemoryFootprint | None = None,
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "cores": cores,
        "runs": list(runs),
        "ratios": _ratios(runs),
        "decisions": [asdict(d) for d in decisions],
        "memory": asdict(footprint) if footprint is not None else None,
    }
    paths = [out / "results.json", out / "results.md", out / "bound-over-time.png"]
    paths[0].write_text(json.dumps(document, indent=2))
    paths[1].write_text(markdown(runs, decisions, cores, footprint))
    plot(runs, paths[2])
    return paths


def plot(runs: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arrivals = sorted({r["arrival"] for r in runs})
    figure, axes = plt.subplots(1, len(arrivals), figsize=(6 * len(arrivals), 4), squeeze=False)
    for axis, arrival in zip(axes[0], arrivals, strict=True):
        for run in (r for r in runs if r["arrival"] == arrival):
            points = run["bound_over_time"]
            axis.plot([p[0] for p in points], [p[1] for p in points], label=run["contender"])
        axis.set_title(f"{arrival} arrival, {runs[0]['nodes']} nodes")
        axis.set_xlabel("seconds since the first pod was created")
        axis.set_ylabel("pods bound")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
