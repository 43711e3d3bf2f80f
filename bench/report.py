"""Benchmark results as JSON, a Markdown table and a PNG plot of pods bound over time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import goals
from bench.decisions import DecisionTiming
from bench.memory import MemoryFootprint
from bench.stages import markdown_lines as stage_lines

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
    ("nodes_per_workload", "nodes per workload"),
    ("api_requests_per_pod", "API requests/pod"),
    ("scheduler_cpu_seconds", "scheduler CPU s"),
    ("scheduler_cpu_ms_per_pod", "scheduler CPU ms/pod"),
    ("apiserver_cpu_ms_per_pod", "apiserver+etcd CPU ms/pod"),
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
            "| arrival | throughput A/B | throughput A/C | throughput A/D | p99 A/B | p99 A/D |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {a} | {r.get('a_over_b', '-')} | {r.get('a_over_c', '-')} "
            f"| {r.get('a_over_d', '-')} | {r.get('p99_a_over_b', '-')} "
            f"| {r.get('p99_a_over_d', '-')} |"
            for a, r in ratios.items()
        ]
    lines += _traffic_lines(runs) + _quality_lines(runs)
    companions = _companions(runs)
    if companions:
        lines += [
            "",
            "Beside the scheduler (not in its CPU and RSS above; in its API requests/pod):",
            "",
            "| contender | arrival | process | CPU s | peak RSS MiB | API requests/pod "
            "| request KiB/pod | response and watch KiB/pod |",
            "|---|---|---|---|---|---|---|---|",
            *companions,
        ]
    lines += stage_lines(runs)
    claims = _claim_lines(runs)
    if claims:
        lines += [
            "",
            "DRA claims (D), per pod bound:",
            "",
            "| arrival | claims created | claim writes | claim status writes | pod status writes "
            "| bindings |",
            "|---|---|---|---|---|---|",
            *claims,
        ]
    if decisions:
        lines += [
            "",
            "Decision time (CPU, no API):",
            "",
            "| nodes | pods/node | affinity and spread terms | mean ms | p99 ms | nodes examined |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {d.nodes} | {d.pods_per_node} | {'yes' if d.terms else 'no'} | {d.mean_ms:.2f} | "
            f"{d.p99_ms:.2f} | {d.nodes_examined_mean:.0f} |"
            for d in decisions
        ]
    if footprint is not None:
        lines += [
            "",
            f"Scheduler caches and state for {footprint.nodes} nodes and {footprint.pods} pods: "
            f"peak RSS {footprint.peak_rss_mib:.0f} MiB "
            f"(process baseline {footprint.baseline_rss_mib:.0f} MiB).",
        ]
    lines += goals.markdown_lines(goals.evaluate(runs, decisions, footprint))
    lines += [
        "",
        "A = vaclab scheduler + accounting, B = kube-scheduler with extended resources, "
        "C = round-robin binder (the apiserver's ceiling; its CPU and RSS include the harness), "
        "D = kube-scheduler with DRA consumable capacity (+ kube-controller-manager's "
        "resourceclaim-controller; oversubscription audited from the claims' consumedCapacity).",
    ]
    return "\n".join(lines) + "\n"


# Processes beside a contender's scheduler: (contender, label, prefix of its detail keys).
_COMPANIONS = (
    ("vaclab", "vaclab-accounting", "accounting"),
    ("dra", "kube-controller-manager (resourceclaim-controller)", "claim_controller"),
)
_CLAIM_COUNTS = (
    "claims_created",
    "claim_writes",
    "claim_status_writes",
    "pod_status_writes",
    "bindings",
)


def _companions(runs: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for run in runs:
        for contender, label, prefix in _COMPANIONS:
            detail = run.get("detail") or {}
            if run["contender"] != contender or f"{prefix}_cpu_seconds" not in detail:
                continue
            requests = detail.get(f"{prefix}_api_requests", 0.0)
            bound = max(1, run["bound"])
            sent = detail.get(f"{prefix}_bytes_sent", 0) / 1024 / bound
            received = detail.get(f"{prefix}_bytes_received", 0) / 1024 / bound
            lines.append(
                f"| {contender} | {run['arrival']} | {label} "
                f"| {detail[f'{prefix}_cpu_seconds']:.2f} "
                f"| {detail.get(f'{prefix}_peak_rss_mib', 0.0):.1f} | {requests / bound:.2f} "
                f"| {sent:.2f} | {received:.2f} |"
            )
    return lines


def _traffic_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
    rows = [
        f"| {r['contender']} | {r['arrival']} | {r['api_requests_per_pod']} "
        f"| {r['api_request_kib_per_pod']:.2f} | {r['api_response_kib_per_pod']:.2f} |"
        for r in runs
        if "api_request_kib_per_pod" in r
    ]
    if not rows:
        return []
    return [
        "",
        "Apiserver traffic per pod bound, all of the contender's processes (bytes on the wire, "
        "TLS included, from each process's read/write counters):",
        "",
        "| contender | arrival | API requests/pod | request KiB/pod | response and watch KiB/pod |",
        "|---|---|---|---|---|",
        *rows,
    ]


def _quality_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
    rows = []
    for r in runs:
        if "span_over_fewest" not in r:
            continue
        together = r["sibling_pairs_together"]
        rows.append(
            f"| {r['contender']} | {r['arrival']} | {r['nodes_per_workload']} "
            f"| {r['fewest_nodes_per_workload']} | {r['span_over_fewest']} | {r['excess_nodes']} "
            f"| {'-' if together is None else f'{100 * together:.1f} %'} |"
        )
    if not rows:
        return []
    return [
        "",
        "Placement quality (final placements read from the API; per workload, the nodes its pods "
        "span and the fewest that could hold them):",
        "",
        "| contender | arrival | nodes per workload | fewest nodes | spanned / fewest "
        "| excess nodes | sibling pairs on one node |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]


def _claim_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for run in runs:
        detail = run.get("detail") or {}
        if run["contender"] != "dra" or "claims_created" not in detail:
            continue
        bound = max(1, run["bound"])
        cells = " | ".join(f"{detail.get(key, 0) / bound:.2f}" for key in _CLAIM_COUNTS)
        lines.append(f"| {run['arrival']} | {cells} |")
    return lines


def _ratios(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    result: dict[str, dict[str, float]] = {}
    for arrival in sorted({r["arrival"] for r in runs}):
        by = {r["contender"]: r for r in runs if r["arrival"] == arrival}
        if "vaclab" not in by:
            continue
        entry: dict[str, float] = {}
        a = by["vaclab"]
        for other, suffix in (("kube", "b"), ("dra", "d")):
            if other not in by:
                continue
            entry[f"a_over_{suffix}"] = round(
                a["throughput_pods_per_second"]
                / max(1e-9, by[other]["throughput_pods_per_second"]),
                2,
            )
            entry[f"p99_a_over_{suffix}"] = round(
                a["latency_p99_s"] / max(1e-9, by[other]["latency_p99_s"]), 2
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
        "goals": [asdict(c) for c in goals.evaluate(runs, decisions, footprint)],
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
