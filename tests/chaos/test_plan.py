"""The fault schedule depends on the seed, the duration, the mix and the mean interval alone."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from tests.chaos.plan import FAULT_KINDS, fault_plan, format_mix, parse_mix


def test_the_same_seed_gives_the_same_schedule() -> None:
    mix = parse_mix("all")
    first = fault_plan(7, 600, mix, 4.0)
    assert first == fault_plan(7, 600, mix, 4.0)
    assert [f.describe() for f in first] == [f.describe() for f in fault_plan(7, 600, mix, 4.0)]
    assert first != fault_plan(8, 600, mix, 4.0)


def test_a_shorter_run_starts_like_a_longer_one() -> None:
    mix = parse_mix("all")
    short, long = fault_plan(3, 60, mix, 4.0), fault_plan(3, 1800, mix, 4.0)
    assert [(f.at, f.kind) for f in short] == [(f.at, f.kind) for f in long[: len(short)]]
    assert all(f.at < 60 for f in short) and long[len(short)].at >= 60


def test_every_fault_ends_with_the_run() -> None:
    for fault in fault_plan(9, 60, parse_mix("all"), 1.0):
        for key in ("down", "seconds", "restart_after", "readd_after"):
            if key in fault.params:
                assert fault.at + float(fault.params[key]) <= 60.5, fault.describe()


def test_every_kind_of_the_mix_comes_up_and_no_other() -> None:
    planned = fault_plan(1, 3600, parse_mix("all"), 4.0)
    assert set(Counter(f.kind for f in planned)) == set(FAULT_KINDS)
    only = fault_plan(1, 3600, parse_mix("partition,apiserver_kill=0,capacity_edit=2"), 4.0)
    assert set(Counter(f.kind for f in only)) == {"partition", "capacity_edit"}


def test_faults_arrive_at_about_the_mean_interval() -> None:
    planned = fault_plan(11, 3600, parse_mix("all"), 4.0)
    assert 3600 / 4.0 * 0.85 < len(planned) < 3600 / 4.0 * 1.15
    assert [f.number for f in planned] == list(range(1, len(planned) + 1))
    assert all(a.at <= b.at for a, b in itertools.pairwise(planned))


def test_parameters_stay_in_their_ranges() -> None:
    for fault in fault_plan(5, 3600, parse_mix("all"), 2.0):
        p = fault.params
        if fault.kind == "apiserver_kill":
            assert 1.0 <= float(p["down"]) <= 15.0
        if fault.kind == "api_errors":
            assert set(str(p["statuses"]).split(",")) <= {"409", "429", "500"}
            assert 0.2 <= float(p["share"]) <= 0.7
        if fault.kind == "capacity_edit":
            assert 0.3 <= float(p["factor"]) <= 1.5


def test_a_mix_names_known_kinds_only() -> None:
    with pytest.raises(ValueError, match="unknown fault kind 'apiserver_restart'"):
        parse_mix("apiserver_restart")
    with pytest.raises(ValueError, match="negative"):
        parse_mix("partition=-1")
    assert parse_mix("partition=2,watch_drop")["watch_drop"] == FAULT_KINDS["watch_drop"][0]
    assert format_mix(parse_mix("partition=2,watch_drop=0")) == "partition=2"
    assert fault_plan(1, 60, {}, 4.0) == ()
