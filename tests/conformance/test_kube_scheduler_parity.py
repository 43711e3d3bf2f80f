"""Our filters against the real kube-scheduler v1.37.2, on seeded random cases.

For every case, every probe (see ``harness``) must agree: kube-scheduler places the pod
exactly when our filters accept a node, on a node they accept; pinned to our choice it binds
there; pinned to a node we refuse it refuses it. The counts are printed; every disagreement
is printed with its seed, and fails the test.

Knobs (environment): ``VACLAB_CONFORMANCE_CASES`` (default 300), ``VACLAB_CONFORMANCE_SEED``
(first seed, default 1), ``VACLAB_CONFORMANCE_SEEDS`` (a comma list, to replay chosen cases),
``VACLAB_CONFORMANCE_WORKERS`` (cases in flight, default 12).
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from scheduler.config import ScoreWeights
from scheduler.decider import Decider
from scheduler.plugins.inter_pod_affinity import NAME as INTER_POD_AFFINITY
from scheduler.plugins.pod_topology_spread import NAME as POD_TOPOLOGY_SPREAD
from tests.conformance.generator import generate
from tests.conformance.harness import CaseResult, Harness, run_cases

pytestmark = pytest.mark.slow


def _seeds() -> list[int]:
    chosen = os.environ.get("VACLAB_CONFORMANCE_SEEDS", "")
    if chosen:
        return [int(seed) for seed in chosen.split(",") if seed.strip()]
    first = int(os.environ.get("VACLAB_CONFORMANCE_SEED", "1"))
    return list(range(first, first + int(os.environ.get("VACLAB_CONFORMANCE_CASES", "300"))))


def summary(results: list[CaseResult], seconds: float) -> str:
    probes = [p for r in results for p in r.probes]
    agreed = sum(1 for r in results if r.agrees)
    placeable = sum(1 for r in results if r.probes and r.probes[0].kube is not None)
    lines = [
        f"conformance with kube-scheduler v1.37.2: {len(results)} cases, {len(probes)} probes "
        f"in {seconds:.0f}s; {agreed}/{len(results)} cases agree "
        f"({100.0 * agreed / max(1, len(results)):.1f}%), "
        f"{sum(1 for p in probes if p.agrees)}/{len(probes)} probes agree; "
        f"placeable {placeable}, unplaceable {len(results) - placeable}",
    ]
    refusals: Counter[str] = Counter()
    for probe in probes:
        refusals.update(probe.refusals)
    lines.append(
        "  nodes our filters refused, by reason: "
        + ", ".join(f"{count} {reason}" for reason, count in refusals.most_common())
    )
    for result in results:
        if result.agrees:
            continue
        lines.append(f"  DISAGREE {result.case.describe()}")
        if result.error:
            lines.append(f"    error: {result.error}")
        lines += [f"    {p.describe()}" for p in result.probes if not p.agrees]
    return "\n".join(lines)


def test_our_filters_agree_with_kube_scheduler(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    workers = int(os.environ.get("VACLAB_CONFORMANCE_WORKERS", "12"))
    results = run_cases(harness, [generate(seed) for seed in _seeds()], workers)
    report = summary(results, time.monotonic() - started)
    with capsys.disabled():
        print("\n" + report)
    assert all(r.agrees for r in results), report


def test_the_comparison_catches_a_scheduler_without_inter_pod_terms(harness: Harness) -> None:
    """The same harness with our InterPodAffinity and PodTopologySpread filters taken out must
    report disagreements: a comparison that cannot fail proves nothing."""
    crippled = Decider(ScoreWeights())
    crippled.filters = [
        f for f in crippled.filters if f.name not in (INTER_POD_AFFINITY, POD_TOPOLOGY_SPREAD)
    ]
    seeds = [
        seed
        for seed in range(1, 400)
        if (case := generate(seed)).placed and case.pod.required_anti_affinity
    ][:8]
    results = run_cases(harness.with_decider(crippled), [generate(s) for s in seeds], workers=8)
    assert any(not r.agrees for r in results), summary(results, 0)
    assert not any(r.error for r in results), summary(results, 0)
