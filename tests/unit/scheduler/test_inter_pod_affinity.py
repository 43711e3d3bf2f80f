"""InterPodAffinity on a ClusterState fed watch events: the edge cases of kube-scheduler's own
plugin tests (filtering_test.go, scoring_test.go), no server."""

from __future__ import annotations

from typing import Any

from scheduler.config import ScoreWeights
from scheduler.plugins.inter_pod_affinity import (
    AFFINITY_MISMATCH,
    ANTI_AFFINITY_MISMATCH,
    EXISTING_ANTI_AFFINITY,
)
from tests.unit.scheduler.cluster_builder import Cluster, pod_json

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


def term(
    key: str = HOST,
    labels: dict[str, str] | None = None,
    expressions: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    selector: dict[str, Any] = {}
    if labels is not None:
        selector["matchLabels"] = labels
    if expressions is not None:
        selector["matchExpressions"] = expressions
    return {"topologyKey": key, "labelSelector": selector, **extra}


def required(kind: str, *terms: dict[str, Any]) -> dict[str, Any]:
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def preferred(kind: str, *weighted: tuple[int, dict[str, Any]]) -> dict[str, Any]:
    return {
        kind: {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": w, "podAffinityTerm": t} for w, t in weighted
            ]
        }
    }


def zones() -> Cluster:
    """a1, a2 in zone a; b1 in zone b; nolabel has no zone."""
    return Cluster().node("a1", **{ZONE: "a"}).node("a2", **{ZONE: "a"}).node("b1", **{ZONE: "b"})


def test_a_pod_without_terms_is_not_constrained_and_costs_no_state() -> None:
    cluster = zones().pod("db", "a1", labels={"app": "db"})
    ctx = cluster.context(pod_json("p"))
    assert ctx.cycle == {}
    assert cluster.feasible(pod_json("p")) == {"a1", "a2", "b1"}


def test_required_affinity_follows_the_matching_pod_within_its_topology() -> None:
    cluster = zones().pod("db", "a1", labels={"app": "db"})
    by_zone = pod_json("web", affinity=required("podAffinity", term(ZONE, {"app": "db"})))
    by_host = pod_json("web", affinity=required("podAffinity", term(HOST, {"app": "db"})))
    assert cluster.feasible(by_zone) == {"a1", "a2"}
    assert cluster.feasible(by_host) == {"a1"}
    assert cluster.reasons(by_host)[AFFINITY_MISMATCH] == 2


def test_every_affinity_term_must_be_met_by_one_and_the_same_pod() -> None:
    cluster = zones().pod("db", "a1", labels={"app": "db"}).pod("cache", "b1", labels={"c": "1"})
    both = pod_json(
        "web",
        affinity=required("podAffinity", term(ZONE, {"app": "db"}), term(ZONE, {"c": "1"})),
    )
    # No single pod matches both terms, and the pod does not match its own terms either.
    assert cluster.feasible(both) == set()


def test_affinity_operators_and_an_empty_selector() -> None:
    cluster = zones().pod("db", "b1", labels={"app": "db", "tier": "x"})
    cases = {
        "In": ({"key": "app", "operator": "In", "values": ["db", "q"]}, {"b1"}),
        "NotIn": ({"key": "app", "operator": "NotIn", "values": ["db"]}, set()),
        "Exists": ({"key": "tier", "operator": "Exists"}, {"b1"}),
        "DoesNotExist": ({"key": "tier", "operator": "DoesNotExist"}, set()),
    }
    for name, (expression, expected) in cases.items():
        body = pod_json(  # labels that fail the NotIn and DoesNotExist terms themselves
            "web",
            labels={"app": "db", "tier": "y"},
            affinity=required("podAffinity", term(HOST, expressions=[expression])),
        )
        assert cluster.feasible(body) == expected, name
    everything = pod_json("web", affinity=required("podAffinity", term(HOST, {})))
    assert cluster.feasible(everything) == {"b1"}


def test_a_missing_label_selector_matches_no_pod() -> None:
    cluster = zones().pod("db", "a1", labels={"app": "db"})
    nothing = pod_json("web", affinity=required("podAffinity", {"topologyKey": HOST}))
    # Nothing matches anywhere, and the pod cannot match a selector that selects nothing.
    assert cluster.feasible(nothing) == set()
    anti_nothing = pod_json("web", affinity=required("podAntiAffinity", {"topologyKey": HOST}))
    assert cluster.feasible(anti_nothing) == {"a1", "a2", "b1"}


def test_the_first_pod_of_a_self_affine_group_may_go_anywhere_with_the_topology_label() -> None:
    cluster = zones().node("bare")
    first = pod_json(
        "web-0", labels={"app": "web"}, affinity=required("podAffinity", term(ZONE, {"app": "web"}))
    )
    assert cluster.feasible(first) == {"a1", "a2", "b1"}  # not "bare": no zone label
    assert cluster.reasons(first)[AFFINITY_MISMATCH] == 1
    # The rule needs the pod to match its own terms.
    stranger = pod_json(
        "x", labels={"app": "x"}, affinity=required("podAffinity", term(ZONE, {"app": "web"}))
    )
    assert cluster.feasible(stranger) == set()
    # Once one matches anywhere, the others must join it.
    cluster.pod("web-0", "b1", labels={"app": "web"})
    assert cluster.feasible(first) == {"b1"}


def test_a_matching_pod_on_a_node_without_the_topology_label_does_not_count() -> None:
    cluster = zones().node("bare").pod("web-0", "bare", labels={"app": "web"})
    body = pod_json(
        "web-1", labels={"app": "web"}, affinity=required("podAffinity", term(ZONE, {"app": "web"}))
    )
    # The only match is where the key is missing: as if there were none (first-pod rule).
    assert cluster.feasible(body) == {"a1", "a2", "b1"}


def test_anti_affinity_keeps_the_pod_out_of_the_matching_domain_only() -> None:
    cluster = zones().pod("web-0", "a1", labels={"app": "web"})
    by_zone = pod_json(
        "web-1",
        labels={"app": "web"},
        affinity=required("podAntiAffinity", term(ZONE, {"app": "web"})),
    )
    by_host = pod_json(
        "web-1",
        labels={"app": "web"},
        affinity=required("podAntiAffinity", term(HOST, {"app": "web"})),
    )
    assert cluster.feasible(by_zone) == {"b1"}
    assert cluster.feasible(by_host) == {"a2", "b1"}
    assert cluster.reasons(by_zone)[ANTI_AFFINITY_MISMATCH] == 2


def test_any_anti_affinity_term_refuses_a_node() -> None:
    cluster = zones().pod("db", "a1", labels={"app": "db"}).pod("q", "b1", labels={"app": "q"})
    body = pod_json(
        "web",
        affinity=required("podAntiAffinity", term(HOST, {"app": "db"}), term(ZONE, {"app": "q"})),
    )
    assert cluster.feasible(body) == {"a2"}


def test_existing_pods_anti_affinity_refuses_the_newcomer_it_selects() -> None:
    guard = pod_json("x", affinity=required("podAntiAffinity", term(ZONE, {"app": "web"})))
    cluster = zones()
    cluster.state.on_pod("ADDED", None, guard | {"spec": guard["spec"] | {"nodeName": "a1"}})
    web = pod_json("web", labels={"app": "web"})
    assert cluster.feasible(web) == {"b1"}
    assert cluster.reasons(web)[EXISTING_ANTI_AFFINITY] == 2
    assert cluster.feasible(pod_json("other", labels={"app": "db"})) == {"a1", "a2", "b1"}
    # Another namespace is out of the guard's term (its own namespace by default).
    assert cluster.feasible(pod_json("web", namespace="elsewhere", labels={"app": "web"})) == {
        "a1",
        "a2",
        "b1",
    }


def test_namespaces_and_namespace_selector_choose_whose_pods_count() -> None:
    cluster = (
        zones()
        .namespace("ns")
        .namespace("team-a", team="a")
        .namespace("team-b", team="b")
        .pod("db", "a1", namespace="team-a", labels={"app": "db"})
        .pod("db", "b1", namespace="team-b", labels={"app": "db"})
    )
    own = pod_json("web", affinity=required("podAffinity", term(HOST, {"app": "db"})))
    listed = pod_json(
        "web", affinity=required("podAffinity", term(HOST, {"app": "db"}, namespaces=["team-b"]))
    )
    selected = pod_json(
        "web",
        affinity=required(
            "podAffinity",
            term(HOST, {"app": "db"}, namespaceSelector={"matchLabels": {"team": "a"}}),
        ),
    )
    every = pod_json(
        "web", affinity=required("podAffinity", term(HOST, {"app": "db"}, namespaceSelector={}))
    )
    both = pod_json(
        "web",
        affinity=required(
            "podAntiAffinity",
            term(
                HOST,
                {"app": "db"},
                namespaces=["team-b"],
                namespaceSelector={"matchLabels": {"team": "a"}},
            ),
        ),
    )
    assert cluster.feasible(own) == set()
    assert cluster.feasible(listed) == {"b1"}
    assert cluster.feasible(selected) == {"a1"}
    assert cluster.feasible(every) == {"a1", "b1"}
    assert cluster.feasible(both) == {"a2"}


def test_an_existing_pods_namespace_selector_reads_the_newcomers_namespace_labels() -> None:
    cluster = zones().namespace("prod", env="prod").namespace("dev", env="dev")
    guard = pod_json(
        "guard",
        namespace="other",
        node="a1",
        affinity=required(
            "podAntiAffinity",
            term(HOST, {"app": "web"}, namespaceSelector={"matchLabels": {"env": "prod"}}),
        ),
    )
    cluster.state.on_pod("ADDED", None, guard)
    assert cluster.feasible(pod_json("w", namespace="prod", labels={"app": "web"})) == {"a2", "b1"}
    assert cluster.feasible(pod_json("w", namespace="dev", labels={"app": "web"})) == {
        "a1",
        "a2",
        "b1",
    }


def test_match_label_keys_and_mismatch_label_keys_narrow_the_selector() -> None:
    cluster = (
        zones()
        .pod("old", "a1", labels={"app": "web", "rev": "1"})
        .pod("new", "a2", labels={"app": "web", "rev": "2"})
    )
    same_rev = pod_json(
        "web",
        labels={"app": "web", "rev": "2"},
        affinity=required("podAntiAffinity", term(HOST, {"app": "web"}, matchLabelKeys=["rev"])),
    )
    other_revs = pod_json(
        "web",
        labels={"app": "web", "rev": "2"},
        affinity=required("podAntiAffinity", term(HOST, {"app": "web"}, mismatchLabelKeys=["rev"])),
    )
    assert cluster.feasible(same_rev) == {"a1", "b1"}
    assert cluster.feasible(other_revs) == {"a2", "b1"}


def test_terminating_pods_still_count_for_affinity() -> None:
    cluster = zones().pod("db", "a1", labels={"app": "db"}, deleting=True)
    body = pod_json("web", affinity=required("podAntiAffinity", term(HOST, {"app": "db"})))
    assert cluster.feasible(body) == {"a2", "b1"}


def test_a_burst_of_replicas_with_anti_affinity_sees_each_assumed_sibling() -> None:
    cluster = zones().node("c1", **{ZONE: "c"})
    placed = [
        cluster.place(
            pod_json(
                f"web-{i}",
                labels={"app": "web"},
                affinity=required("podAntiAffinity", term(ZONE, {"app": "web"})),
            )
        )
        for i in range(4)
    ]
    assert placed[3] is None
    assert sorted(p[0] for p in placed[:3] if p) == ["a", "b", "c"]


def test_preferred_terms_score_the_matching_domain() -> None:
    cluster = zones().pod("db", "b1", labels={"app": "db"})
    near = pod_json("web", affinity=preferred("podAffinity", (50, term(ZONE, {"app": "db"}))))
    far = pod_json("web", affinity=preferred("podAntiAffinity", (50, term(ZONE, {"app": "db"}))))
    assert cluster.decide(near).node == "b1"
    assert cluster.decide(far).node in {"a1", "a2"}


def test_existing_pods_preferred_and_required_affinity_pull_a_matching_newcomer() -> None:
    cluster = zones()
    fan = pod_json(
        "fan",
        node="b1",
        affinity=required("podAffinity", term(ZONE, {"app": "web"}))
        | preferred("podAntiAffinity", (1, term(ZONE, {"app": "x"}))),
    )
    cluster.state.on_pod("ADDED", None, fan)
    assert cluster.decide(pod_json("web", labels={"app": "web"})).node == "b1"
    assert cluster.decide(pod_json("x", labels={"app": "x"})).node in {"a1", "a2"}


def test_sibling_colocation_outweighs_preferred_anti_affinity_unless_weighted_up() -> None:
    def build(weights: ScoreWeights) -> Cluster:
        cluster = Cluster(weights).node("n1").node("n2")
        owner = {"kind": "StatefulSet", "name": "web", "controller": True, "uid": "s"}
        sibling = pod_json("web-0", node="n1", labels={"app": "web"})
        sibling["metadata"]["ownerReferences"] = [owner]
        cluster.state.on_pod("ADDED", None, sibling)
        return cluster

    body = pod_json(
        "web-1",
        labels={"app": "web"},
        affinity=preferred("podAntiAffinity", (100, term(HOST, {"app": "web"}))),
    )
    body["metadata"]["ownerReferences"] = [
        {"kind": "StatefulSet", "name": "web", "controller": True, "uid": "s"}
    ]
    assert build(ScoreWeights()).decide(body).node == "n1"
    assert build(ScoreWeights(pod_affinity=20)).decide(body).node == "n2"


def test_placed_pods_terms_are_found_by_label_and_forgotten_with_their_pods() -> None:
    cluster = zones()
    by_value = pod_json(
        "guard-in",
        node="a1",
        affinity=required("podAntiAffinity", term(HOST, {"app": "web"})),
    )
    by_absence = pod_json(
        "guard-notin",
        node="b1",
        affinity=required(
            "podAntiAffinity",
            term(HOST, expressions=[{"key": "app", "operator": "NotIn", "values": ["web"]}]),
        ),
    )
    for body in (by_value, by_absence):
        cluster.state.on_pod("ADDED", None, body)
    index = cluster.state.pod_index
    assert len(index.anti_affinity) == 2
    assert cluster.feasible(pod_json("w", labels={"app": "web"})) == {"a2", "b1"}
    assert cluster.feasible(pod_json("d", labels={"app": "db"})) == {"a1", "a2"}
    assert cluster.feasible(pod_json("x")) == {"a1", "a2"}  # no app label: NotIn matches
    cluster.state.on_pod("DELETED", by_value, None)
    cluster.state.on_pod("DELETED", by_absence, None)
    assert not index.anti_affinity and not index.affinity
    assert cluster.feasible(pod_json("w", labels={"app": "web"})) == {"a1", "a2", "b1"}


def test_a_pod_placed_elsewhere_wakes_the_pods_waiting_for_a_match_and_only_them() -> None:
    cluster = zones()
    queue = cluster.state.queue
    ours = cluster.state.config.scheduler_name
    waiting = pod_json(
        "web",
        affinity=required("podAffinity", term(ZONE, {"app": "db"})),
        schedulerName=ours,
    )
    plain = pod_json("plain", schedulerName=ours)
    for body in (waiting, plain):
        cluster.state.on_pod("ADDED", None, body)
    for _ in range(2):
        parked = queue.pop(timeout=0)
        assert parked is not None
        queue.retry(parked.uid, unschedulable=True)
    assert queue.depth()["unschedulable"] == 2
    cluster.pod("db", "b1", labels={"app": "db"})  # bound by another scheduler
    assert queue.depth() == {"active": 0, "backoff": 1, "unschedulable": 1, "in-flight": 0}
    assert cluster.feasible(waiting) == {"b1"}
