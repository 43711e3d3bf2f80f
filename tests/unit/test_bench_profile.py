"""Summaries of py-spy's collapsed stacks (bench.profile)."""

from __future__ import annotations

from bench.profile import parse_collapsed, speedscope, top_functions

RAW = """\
run (scheduler/loop.py);decide (scheduler/decider.py);score (scheduler/rank.py) 6
run (scheduler/loop.py);decide (scheduler/decider.py) 2
run (scheduler/loop.py);bind (scheduler/binder.py) 2
 1
"""


def test_parse_collapsed() -> None:
    stacks = list(parse_collapsed(RAW + "not a line\n"))
    assert stacks[0] == (
        ["run (scheduler/loop.py)", "decide (scheduler/decider.py)", "score (scheduler/rank.py)"],
        6,
    )
    assert stacks[-1] == ([], 1)
    assert len(stacks) == 4


def test_top_functions_total_and_self_shares() -> None:
    text = top_functions(RAW, top=2)
    assert text.splitlines()[0] == "11 samples at 100 Hz (0.1 s holding the GIL)"
    by_total = text.split("Top 2 functions by self")[0]
    assert "    90.9     0.0  run (scheduler/loop.py)" in by_total
    assert "    72.7    18.2  decide (scheduler/decider.py)" in by_total
    assert "score" not in by_total  # third by total
    by_self = text.split("Top 2 functions by self (at the top):")[1]
    assert "    54.5    54.5  score (scheduler/rank.py)" in by_self


def test_recursion_counts_once_per_sample() -> None:
    text = top_functions("f (a.py);f (a.py);g (a.py) 4\n", top=5)
    assert "   100.0     0.0  f (a.py)" in text


def test_speedscope_shares_frames_between_samples() -> None:
    document = speedscope(RAW, "scheduler")
    frames = [f["name"] for f in document["shared"]["frames"]]
    profile = document["profiles"][0]
    assert frames[:2] == ["run (scheduler/loop.py)", "decide (scheduler/decider.py)"]
    assert len(frames) == 4
    assert profile["samples"][:3] == [[0, 1, 2], [0, 1], [0, 3]]
    assert profile["weights"] == [6, 2, 2, 1]
    assert profile["endValue"] == 11
