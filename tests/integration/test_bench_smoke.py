"""A tiny run of ``make bench`` (10 nodes, 50 pods) so the harness does not rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.controlplane
@pytest.mark.slow
def test_bench_smoke_run_reports_every_contender(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--preset",
            "smoke",
            "--arrivals",
            "burst",
            "--decisions",
            "100x10",
            "--memory",
            "100x1000",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads((tmp_path / "results.json").read_text())
    runs = {run["contender"]: run for run in document["runs"]}
    assert set(runs) == {"vaclab", "kube", "roundrobin", "dra"}
    for name in ("vaclab", "kube", "dra"):
        assert runs[name]["bound"] == 50, runs[name]
        assert runs[name]["oversubscribed_nodes"] == 0
        assert runs[name]["throughput_pods_per_second"] > 0
        assert runs[name]["api_requests_per_pod"] > 0
    assert runs["vaclab"]["scheduler_peak_rss_mib"] > 0
    # D: every pod's claim made from its template, allocated, and audited from the claims.
    dra = runs["dra"]["detail"]
    assert dra["claims_created"] == dra["claims_allocated"] == 50, dra
    assert dra["claim_status_writes"] >= 50
    assert dra["oversubscribed_by_claims"] == [] and dra["oversubscribed_by_bound_pods"] == 0
    assert dra["claim_controller_cpu_seconds"] > 0
    assert runs["dra"]["scheduler_peak_rss_mib"] > 0
    assert document["ratios"]["burst"]["a_over_b"] > 0
    assert document["ratios"]["burst"]["a_over_d"] > 0
    assert document["decisions"][0]["nodes"] == 100
    assert document["memory"]["pods"] == 1000
    assert document["memory"]["peak_rss_mib"] > document["memory"]["baseline_rss_mib"] > 0
    assert (tmp_path / "bound-over-time.png").stat().st_size > 1000
    report = (tmp_path / "results.md").read_text()
    assert "| vaclab | burst |" in report
    assert "| dra | burst |" in report and "resourceclaim-controller" in report
