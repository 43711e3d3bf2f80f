"""Contender A's latency stages as the bench reads them from the scheduler's histogram."""

from __future__ import annotations

import math

import pytest

from bench.stages import Snapshot, figures, markdown_lines, quantile


def test_a_quantile_is_interpolated_within_its_bucket() -> None:
    cumulative = {0.001: 0.0, 0.01: 50.0, 0.1: 100.0, math.inf: 100.0}
    assert quantile(cumulative, 0.5) == pytest.approx(0.01)
    assert quantile(cumulative, 0.25) == pytest.approx(0.0055)
    assert quantile(cumulative, 0.99) == pytest.approx(0.0982)
    assert quantile({math.inf: 0.0}, 0.5) == 0.0
    assert quantile({0.5: 0.0, math.inf: 4.0}, 0.5) == 0.5, "in +Inf: the highest bound"


def test_only_what_was_observed_between_the_scrapes_counts() -> None:
    before = Snapshot({"bind": {0.01: 5.0, math.inf: 5.0}}, {"bind": 0.02})
    after = Snapshot({"bind": {0.01: 5.0, 0.1: 15.0, math.inf: 15.0}}, {"bind": 0.52})
    by_stage = {s.stage: s for s in figures(before, after)}
    assert by_stage["bind"].count == 10
    assert by_stage["bind"].mean_ms == pytest.approx(50.0)
    assert 10 < by_stage["bind"].p50_ms <= 100
    assert by_stage["watch"].count == 0 and by_stage["watch"].mean_ms == 0


def test_the_report_names_what_the_stages_leave_outside() -> None:
    stages = [
        {"stage": name, "count": 10, "mean_ms": 1.0, "p50_ms": 1.0, "p99_ms": 2.0}
        for name in ("watch", "queue", "decide", "reserve", "bind")
    ]
    detail = {"stages": stages, "latency_mean_s": 0.008}
    run = {"contender": "vaclab", "arrival": "steady", "detail": detail}
    text = "\n".join(markdown_lines([run, {"contender": "kube", "arrival": "steady"}]))
    assert "| reserve | 10 | 1.00 | 1.00 | 2.00 |" in text
    assert "| outside (end-to-end mean 8.00 ms minus the stages) | | 3.00 | | |" in text
    assert text.count("Latency stages") == 1
