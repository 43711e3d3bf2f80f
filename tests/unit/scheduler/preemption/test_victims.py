"""Victims on one node and the choice of node: kube-scheduler's DefaultPreemption edge cases
(default_preemption_test.go, preemption_test.go) on bandwidth, no server."""

from __future__ import annotations

from scheduler.preemption.victims import Candidate, pick
from tests.unit.scheduler.preemption.lab import NOW, Lab


def test_the_fewest_lower_priority_pods_go_the_most_important_stay() -> None:
    lab = Lab().node("n1")
    lab.pod("background", "n1", priority=10, up=600, reserved=True)
    lab.pod("small", "n1", priority=5, up=300, reserved=True)
    lab.pod("urgent", priority=100, up=700)
    # All lower-priority pods off, then back most important first: "background" (priority 10)
    # does not fit beside the 700 Mbps, "small" does.
    assert lab.victims("urgent") == ("n1", {"background"})


def test_equal_priority_pods_go_latest_started_first() -> None:
    lab = Lab().node("n1")
    lab.pod("old", "n1", priority=1, up=500, minutes=60)
    lab.pod("new", "n1", priority=1, up=500, minutes=5)
    lab.pod("urgent", priority=9, up=500)
    assert lab.victims("urgent") == ("n1", {"new"})


def test_pods_of_equal_or_higher_priority_are_never_victims() -> None:
    lab = Lab().node("n1")
    lab.pod("peer", "n1", priority=50, up=600)
    lab.pod("boss", "n1", priority=80, up=300)
    lab.pod("urgent", priority=50, up=700)
    attempt = lab.attempt("urgent")
    assert attempt.plan is None and attempt.result == "no_candidate"
    # Nothing could be taken away: no preemption clause in the pod's message.
    assert attempt.message == ""


def test_every_axis_counts_local_and_downlink_too() -> None:
    lab = Lab().node("n1", network=(1000, 1000), local=(2000, 2000))
    lab.pod("uplink-heavy", "n1", priority=1, up=900)
    lab.pod("downlink-heavy", "n1", priority=1, down=900, minutes=1)
    lab.pod("urgent", priority=9, down=500)
    # Only the downlink is short: the uplink-heavy pod stays.
    assert lab.victims("urgent") == ("n1", {"downlink-heavy"})


def test_pods_bound_by_another_scheduler_are_victims_too() -> None:
    lab = Lab().node("n1")
    lab.pod("theirs", "n1", priority=0, up=800)  # no reservation: charged from its annotation
    lab.pod("urgent", priority=9, up=500)
    assert lab.refusals("urgent")["n1"]
    assert lab.victims("urgent") == ("n1", {"theirs"})


def test_a_budget_that_would_break_is_spared_when_another_victim_will_do() -> None:
    def lab(allowed: int | None) -> Lab:
        made = Lab().node("n1")
        # "guarded" is the less important of the two (started later): without its budget it
        # would be the victim.
        made.pod("guarded", "n1", priority=1, up=500, minutes=1, labels={"app": "db"})
        made.pod("plain", "n1", priority=1, up=500, minutes=60)
        made.pod("urgent", priority=9, up=500)
        if allowed is not None:
            made.budget({"app": "db"}, allowed=allowed)
        return made

    assert lab(None).victims("urgent") == ("n1", {"guarded"})
    assert lab(1).victims("urgent") == ("n1", {"guarded"})
    assert lab(0).victims("urgent") == ("n1", {"plain"})


def test_a_budget_is_broken_when_nothing_else_makes_room_and_the_break_is_counted() -> None:
    lab = Lab().node("n1").node("n2")
    lab.pod("db-1", "n1", priority=1, up=800, labels={"app": "db"})
    lab.pod("web-1", "n2", priority=5, up=800)
    lab.pod("urgent", priority=9, up=500)
    lab.budget({"app": "db"}, allowed=0)
    # n1 would break the budget, n2 would not: fewest violations wins over lower priority.
    assert lab.victims("urgent") == ("n2", {"web-1"})
    lab.pod("db-2", "n2", priority=1, up=100, labels={"app": "db"})
    lab.pod("urgent-2", priority=9, up=1000)
    attempt = lab.attempt("urgent-2")
    assert attempt.plan is not None
    assert attempt.plan.budget_violations == 1


def test_a_budget_allowing_one_disruption_covers_one_victim() -> None:
    lab = Lab().node("n1")
    for i in range(3):
        lab.pod(f"db-{i}", "n1", priority=1, up=300, minutes=i, labels={"app": "db"})
    lab.pod("urgent", priority=9, up=700)
    lab.budget({"app": "db"}, allowed=1)
    attempt = lab.attempt("urgent")
    assert attempt.plan is not None
    assert len(attempt.plan.victims) == 2 and attempt.plan.budget_violations == 1


def _candidate(
    node: str, *victims: tuple[int, int], violations: int = 0, siblings: int = 0
) -> Candidate:
    """Victims as (priority, minutes since start)."""
    lab = Lab().node(node)
    for i, (priority, minutes) in enumerate(victims):
        lab.pod(f"{node}-{i}", node, priority=priority, minutes=minutes)
    pods = sorted(
        (lab.facts(f"{node}-{i}") for i in range(len(victims))), key=lambda p: -p.priority
    )
    return Candidate(node, tuple(pods), violations, siblings)


def _picked(*candidates: Candidate) -> str:
    return pick(candidates, now=NOW).node


def test_node_choice_follows_kube_schedulers_order_then_siblings_then_name() -> None:
    # 1. fewest budget violations, even with higher-priority victims
    assert _picked(_candidate("a", (1, 5), violations=1), _candidate("b", (50, 5))) == "b"
    # 2. lowest priority of the most important victim
    assert _picked(_candidate("a", (10, 5)), _candidate("b", (5, 5), (5, 5), (5, 5))) == "b"
    # 3. smallest sum of priorities
    assert _picked(_candidate("a", (5, 5), (4, 5)), _candidate("b", (5, 5), (1, 5))) == "b"
    # 4. fewest victims
    assert _picked(_candidate("a", (5, 5), (0, 5)), _candidate("b", (5, 5))) == "b"
    # 5. latest start among the most important victims
    assert _picked(_candidate("a", (5, 50)), _candidate("b", (5, 10))) == "b"
    assert _picked(_candidate("a", (5, 10), (1, 1)), _candidate("b", (5, 50), (5, 1))) == "a"
    # 6. then the node holding more of the pod's siblings, then the name
    assert _picked(_candidate("a", (5, 5)), _candidate("b", (5, 5), siblings=2)) == "b"
    assert _picked(_candidate("b", (5, 5)), _candidate("a", (5, 5))) == "a"


def test_negative_priorities_sum_so_that_fewer_victims_win() -> None:
    few = _candidate("a", (-10, 5))
    many = _candidate("b", (-10, 5), (-10, 5))
    assert _picked(many, few) == "a"


def test_a_pod_not_started_counts_as_started_now() -> None:
    lab = Lab().node("a").node("b")
    lab.pod("a-0", "a", priority=5, up=900, minutes=30)
    lab.pod("b-0", "b", priority=5, up=900)  # no startTime: "now", the latest
    lab.pod("urgent", priority=9, up=500)
    assert lab.victims("urgent") == ("b", {"b-0"})


def test_siblings_break_the_remaining_tie() -> None:
    lab = Lab().node("a").node("b")
    lab.pod("a-0", "a", priority=1, up=900, minutes=10)
    lab.pod("b-0", "b", priority=1, up=900, minutes=10)
    lab.pod("web-0", "b", priority=9, up=50, owner=("StatefulSet", "web"))
    lab.pod("web-1", priority=9, up=500, owner=("StatefulSet", "web"))
    assert lab.victims("web-1") == ("b", {"b-0"})
