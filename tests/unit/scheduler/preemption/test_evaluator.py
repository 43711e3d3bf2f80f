"""The PostFilter on a ClusterState: who may preempt, which nodes removing pods could help,
the nomination it leaves and how long it waits for its victims. No server."""

from __future__ import annotations

from typing import Any

from scheduler.preemption.evaluator import candidates_to_find
from tests.unit.scheduler.preemption.lab import Lab

ZONE = "topology.kubernetes.io/zone"


def test_a_pod_with_preemption_policy_never_waits_and_says_so() -> None:
    lab = Lab().node("n1")
    lab.pod("background", "n1", priority=0, up=900)
    lab.pod("polite", priority=100, up=500, never=True)
    attempt = lab.attempt("polite")
    assert attempt.result == "not_eligible" and attempt.plan is None
    assert attempt.message == "preemption: not eligible due to preemptionPolicy=Never."
    assert lab.state.nominator.node_of(lab.facts("polite").uid) is None


def test_nodes_removing_pods_cannot_help_are_never_candidates() -> None:
    lab = Lab()
    lab.node("tainted", taints=[{"key": "lab", "value": "x", "effect": "NoSchedule"}])
    lab.node("elsewhere", zone="b")
    lab.node("no-ledger", ledger=False)
    lab.node("too-small", network=(400, 400))
    lab.node("few-cpus", cpu="1")
    for node in ("tainted", "elsewhere", "no-ledger", "too-small", "few-cpus"):
        lab.pod(f"low-{node}", node, priority=0, up=300)
    lab.pod(
        "urgent",
        priority=100,
        up=500,
        cpu="2",
        spec={"nodeSelector": {"zone": "a"}},
    )
    # Taint, node selector, no Bandwidth object, a request above the link, above the CPUs:
    # each is kube's UnschedulableAndUnresolvable. "elsewhere" fails the selector first.
    attempt = lab.attempt("urgent")
    assert attempt.plan is None and attempt.result == "no_candidate"
    assert attempt.message == ""


def test_the_summary_names_what_still_fails_when_victims_do_not_suffice() -> None:
    lab = Lab().node("n1").node("n2")
    lab.pod("boss", "n1", priority=500, up=800)
    lab.pod("low", "n1", priority=0, up=100)
    lab.pod("peer", "n2", priority=100, up=900)
    lab.pod("urgent", priority=100, up=500)
    attempt = lab.attempt("urgent")
    assert attempt.plan is None
    assert attempt.message == (
        "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
        "1 insufficient network uplink bandwidth (need 500 Mbps)."
    )


def test_a_preemption_nominates_the_pod_and_the_room_is_held_for_it() -> None:
    lab = Lab().node("n1").node("n2")
    lab.pod("low-1", "n1", priority=0, up=800, reserved=True)
    lab.pod("low-2", "n2", priority=10, up=800, reserved=True)
    lab.pod("urgent", priority=100, up=700)
    attempt = lab.attempt("urgent")
    assert attempt.result == "preempted" and attempt.plan is not None
    assert attempt.plan.node == "n1"
    assert attempt.message == (
        "preemption: nominated node n1, preempting 1 pod(s) of lower priority: "
        "ns/low-1 (priority 0)."
    )
    urgent = lab.facts("urgent").uid
    assert lab.state.nominator.node_of(urgent) == "n1"

    # The victim is gone and its reservation released: 1000 Mbps free on n1, 700 held.
    lab.delete("low-1")
    lab.release("low-1")
    lab.pod("filler", priority=50, up=400)
    assert lab.refusals("filler")["n1"] == (
        "insufficient network uplink bandwidth (need 400 Mbps)",
    )
    lab.pod("small", priority=50, up=300)
    assert lab.refusals("small")["n1"] == ()
    # Equal priority respects the nomination too; a higher one does not.
    lab.pod("equal", priority=100, up=400)
    assert lab.refusals("equal")["n1"]
    lab.pod("higher", priority=101, up=1000)
    assert lab.refusals("higher")["n1"] == ()
    # The pod itself goes to its nominated node.
    assert lab.choose("urgent") == "n1"


def test_the_preemptor_waits_for_its_victims_until_they_and_their_reservations_are_gone() -> None:
    lab = Lab().node("n1").node("n2")
    lab.pod("low-1", "n1", priority=0, up=800, reserved=True)
    lab.pod("low-2", "n2", priority=0, up=900, reserved=True)
    lab.pod("urgent", priority=100, up=700)
    assert lab.attempt("urgent").result == "preempted"
    # Deletion in flight, then terminating, then deleted with the ledger entry still there.
    assert lab.attempt("urgent").result == "waiting"
    lab.terminate("low-1")
    assert lab.attempt("urgent").message == (
        "preemption: not eligible due to a terminating pod on the nominated node."
    )
    lab.delete("low-1")
    assert lab.choose("urgent") is None
    assert lab.attempt("urgent").result == "waiting"
    lab.release("low-1")
    assert lab.choose("urgent") == "n1"


def test_a_terminating_preempted_pod_holds_the_nomination_after_a_restart() -> None:
    lab = Lab().node("n1")
    lab.pod("low", "n1", priority=0, up=800, deleting=True, preempted=True)
    lab.pod("urgent", priority=100, up=700, nominated="n1")
    # A fresh scheduler (no memory of the attempt) reads the nomination and the condition.
    assert lab.state.nominator.node_of(lab.facts("urgent").uid) == "n1"
    assert lab.attempt("urgent").result == "waiting"


def test_a_nomination_that_no_longer_helps_is_dropped() -> None:
    lab = Lab().node("n1")
    lab.pod("boss", "n1", priority=500, up=900)
    lab.pod("urgent", priority=100, up=700, nominated="n1")
    attempt = lab.attempt("urgent")
    assert attempt.result == "no_candidate" and attempt.dropped_nomination
    assert lab.state.nominator.node_of(lab.facts("urgent").uid) is None


def test_a_nominated_node_refused_for_good_lets_the_pod_preempt_elsewhere() -> None:
    lab = Lab().node("n1").node("n2")
    lab.pod("low", "n1", priority=0, up=800, deleting=True, preempted=True)
    lab.pod("low-2", "n2", priority=0, up=800)
    lab.pod("urgent", priority=100, up=700, nominated="n1")
    lab.state.on_node(
        "MODIFIED",
        None,
        {
            "metadata": {"name": "n1", "labels": {}},
            "spec": {"taints": [{"key": "gone", "effect": "NoSchedule"}]},
            "status": {
                "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        },
    )
    assert lab.victims("urgent") == ("n2", {"low-2"})


def test_a_higher_priority_preemption_clears_lower_nominations_on_its_node() -> None:
    lab = Lab().node("n1")
    lab.pod("low", "n1", priority=0, up=900)
    lab.pod("middle", priority=50, up=500)
    assert lab.attempt("middle").plan is not None
    lab.pod("urgent", priority=100, up=1000)
    attempt = lab.attempt("urgent")
    assert attempt.plan is not None and attempt.plan.node == "n1"
    assert [p.name for p in attempt.plan.cleared] == ["middle"]
    assert lab.state.nominator.node_of(lab.facts("middle").uid) is None


def test_lower_priority_pods_in_flight_are_never_victims_and_the_pod_retries_soon() -> None:
    lab = Lab().node("n1")
    lab.pod("low", "n1", priority=0, up=300)
    lab.pod("in-flight", priority=0, up=600)
    with lab.state.lock:
        lab.state.assume(lab.context("in-flight"), "n1")
    lab.pod("urgent", priority=100, up=800)
    attempt = lab.attempt("urgent")
    assert attempt.plan is None and attempt.retry_soon


def _anti(app: str) -> dict[str, Any]:
    return {
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": ZONE}
                ]
            }
        }
    }


def test_anti_affinity_to_a_lower_priority_pod_is_resolved_by_preempting_it() -> None:
    lab = Lab().node("a1", **{ZONE: "a"}).node("a2", **{ZONE: "a"})
    lab.pod("cache", "a1", priority=0, labels={"app": "cache"})
    lab.pod("other", "a2", priority=0, up=100)
    lab.pod("db", priority=10, spec=_anti("cache"))
    assert set(lab.refusals("db").values()) == {("node(s) didn't match pod anti-affinity rules",)}
    # Removing "other" on a2 does not help (the zone still holds the cache); removing the
    # cache on a1 does.
    assert lab.victims("db") == ("a1", {"cache"})


def test_existing_pods_anti_affinity_is_resolved_by_preempting_the_holder() -> None:
    lab = Lab().node("a1", **{ZONE: "a"}).node("b1", **{ZONE: "b"})
    lab.pod("loner-a", "a1", priority=0, labels={"app": "loner"}, spec=_anti("db"))
    lab.pod("loner-b", "b1", priority=50, labels={"app": "loner"}, spec=_anti("db"))
    lab.pod("db", priority=10, labels={"app": "db"})
    assert lab.victims("db") == ("a1", {"loner-a"})


def test_required_affinity_is_never_resolved_by_preemption() -> None:
    lab = Lab().node("a1", **{ZONE: "a"})
    lab.pod("low", "a1", priority=0, up=900, labels={"app": "x"})
    affinity = {
        "affinity": {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "y"}}, "topologyKey": ZONE}
                ]
            }
        }
    }
    lab.pod("wants-y", priority=10, up=500, labels={"app": "y"}, spec=affinity)
    # The first-pod rule would let it in once "low" went: kube marks the refusal
    # unresolvable so that it never preempts for it, and so do we.
    lab.pod("other", "a1", priority=0, labels={"app": "y"})
    assert lab.attempt("wants-y").plan is not None  # affinity met, bandwidth short: preempt
    lab2 = Lab().node("a1", **{ZONE: "a"}).node("b1", **{ZONE: "b"})
    lab2.pod("y", "b1", priority=50, up=900, labels={"app": "y"})
    lab2.pod("low", "a1", priority=0, up=900)
    lab2.pod("wants-y", priority=10, up=500, labels={"app": "y"}, spec=affinity)
    assert lab2.attempt("wants-y").plan is None  # a1 lacks an "app=y" pod in its zone


def test_hard_spread_counts_follow_the_victims_off_the_node() -> None:
    spread = {
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": ZONE,
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "web"}},
            }
        ]
    }
    lab = Lab().node("a1", **{ZONE: "a"}).node("b1", **{ZONE: "b"})
    lab.pod("web-a0", "a1", priority=0, labels={"app": "web"})
    lab.pod("web-a1", "a1", priority=0, labels={"app": "web"})
    lab.pod("web-b0", "b1", priority=50, labels={"app": "web"}, up=1000)
    # b1 is full (bandwidth), a1 is two ahead of zone b: only preempting a web pod on a1
    # brings the skew down.
    lab.pod("web-new", priority=10, up=100, labels={"app": "web"}, spec=spread)
    node, victims = lab.victims("web-new")
    assert node == "a1" and len(victims) == 1 and victims <= {"web-a0", "web-a1"}


def test_host_ports_taken_by_a_lower_priority_pod_are_freed_by_preempting_it() -> None:
    ports = {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}
    lab = Lab().node("n1")
    lab.pod("old-gw", "n1", priority=0, spec=ports)
    lab.pod("bystander", "n1", priority=0, up=100)
    lab.pod("gw", priority=10, spec=ports)
    assert lab.victims("gw") == ("n1", {"old-gw"})


def test_enough_candidates_is_a_tenth_of_the_nodes_and_at_least_a_hundred() -> None:
    assert candidates_to_find(7) == 7
    assert candidates_to_find(500) == 100
    assert candidates_to_find(5000) == 500


def test_a_pod_refused_as_a_whole_never_preempts() -> None:
    lab = Lab().node("n1")
    lab.pod("low", "n1", priority=0, up=900)
    claim = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "missing"}}]}
    lab.pod("urgent", priority=100, up=500, spec=claim)
    assert lab.context("urgent").rejection is not None  # the claim does not exist
    attempt = lab.attempt("urgent")
    assert attempt.plan is None and attempt.result == "no_candidate" and attempt.message == ""
