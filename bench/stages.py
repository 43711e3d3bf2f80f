"""Where contender A's latency goes: the scheduler's per-stage histogram, scraped and reported.

The scheduler serves ``vaclab_scheduler_pod_stage_duration_seconds{stage}`` (watch, queue,
decide, reserve, bind: ``scheduler.metrics.STAGES``). The bench scrapes it when it starts
measuring and when the run ends, and reports the difference per stage: count, mean and the
p50/p99 a histogram can tell (linear within a bucket, as PromQL's ``histogram_quantile``).
What the stages do not cover — the apiserver storing the pod and the binding, and the two
watch deliveries (the pod to the scheduler, the bound pod to the bench) — is the bench's own
end-to-end mean minus the stages' means, reported as ``outside``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench import measure

METRIC = "vaclab_scheduler_pod_stage_duration_seconds"
STAGES = ("watch", "queue", "decide", "reserve", "bind")

Buckets = dict[str, dict[float, float]]
"""Per stage, the cumulative count of each bucket's upper bound (``inf`` included)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    buckets: Buckets
    sums: dict[str, float]


@dataclass(frozen=True, slots=True)
class StageFigures:
    stage: str
    count: int
    mean_ms: float
    p50_ms: float
    p99_ms: float


def scrape(url: str) -> Snapshot:
    buckets: Buckets = {}
    sums: dict[str, float] = {}
    for labels, value in measure.scrape_samples(url, METRIC + "_bucket"):
        buckets.setdefault(labels["stage"], {})[float(labels["le"])] = value
    for labels, value in measure.scrape_samples(url, METRIC + "_sum"):
        sums[labels["stage"]] = value
    return Snapshot(buckets, sums)


def quantile(cumulative: dict[float, float], share: float) -> float:
    """The ``share`` quantile of a histogram's cumulative buckets, interpolated linearly within
    the bucket it falls in; the highest finite bound if it falls in ``+Inf``."""
    bounds = sorted(cumulative)
    total = cumulative.get(math.inf, 0.0)
    if total <= 0:
        return 0.0
    rank = share * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def figures(before: Snapshot, after: Snapshot) -> list[StageFigures]:
    """Each stage's figures for what was observed between the two scrapes."""
    result = []
    for stage in STAGES:
        now = after.buckets.get(stage, {})
        then = before.buckets.get(stage, {})
        cumulative = {bound: count - then.get(bound, 0.0) for bound, count in now.items()}
        count = int(cumulative.get(math.inf, 0.0))
        seconds = after.sums.get(stage, 0.0) - before.sums.get(stage, 0.0)
        result.append(
            StageFigures(
                stage,
                count,
                round(1000 * seconds / max(1, count), 3),
                round(1000 * quantile(cumulative, 0.50), 3),
                round(1000 * quantile(cumulative, 0.99), 3),
            )
        )
    return result


def as_detail(stages: Sequence[StageFigures]) -> list[dict[str, Any]]:
    return [asdict(s) for s in stages]


def markdown_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
    """A table per run of A that carries the stages (``detail["stages"]``)."""
    lines: list[str] = []
    for run in runs:
        detail = run.get("detail") or {}
        stages = detail.get("stages")
        if run["contender"] != "vaclab" or not stages:
            continue
        lines += [
            "",
            f"Latency stages of A, {run['arrival']} arrival (the scheduler's "
            f"`{METRIC}`; p50/p99 interpolated within buckets):",
            "",
            "| stage | pods | mean ms | p50 ms | p99 ms |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {s['stage']} | {s['count']} | {s['mean_ms']:.2f} | {s['p50_ms']:.2f} "
            f"| {s['p99_ms']:.2f} |"
            for s in stages
        ]
        mean_s = detail.get("latency_mean_s")
        if mean_s is not None:
            inside = sum(s["mean_ms"] for s in stages)
            lines.append(
                f"| outside (end-to-end mean {1000 * mean_s:.2f} ms minus the stages) "
                f"| | {1000 * mean_s - inside:.2f} | | |"
            )
    return lines
