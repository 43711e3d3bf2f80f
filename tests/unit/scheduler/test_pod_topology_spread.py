"""PodTopologySpread on a ClusterState fed watch events: the edge cases of kube-scheduler's
own plugin tests (filtering_test.go, scoring_test.go), no server."""

from __future__ import annotations

from typing import Any

from scheduler.config import ScoreWeights
from scheduler.plugins.pod_topology_spread import MISSING_LABEL, SPREAD_MISMATCH
from tests.unit.scheduler.cluster_builder import Cluster, pod_json

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
WEB = {"app": "web"}


def spread(
    key: str = ZONE, max_skew: int = 1, labels: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    constraint: dict[str, Any] = {
        "maxSkew": max_skew,
        "topologyKey": key,
        "whenUnsatisfiable": "DoNotSchedule",
        **extra,
    }
    if labels is not None:
        constraint["labelSelector"] = {"matchLabels": labels}
    return constraint


def three_zones() -> Cluster:
    return (
        Cluster()
        .node("a1", **{ZONE: "a"})
        .node("a2", **{ZONE: "a"})
        .node("b1", **{ZONE: "b"})
        .node("c1", **{ZONE: "c"})
    )


def web(*constraints: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return pod_json("web", labels=dict(WEB), spread=list(constraints), **kwargs)


def test_an_empty_cluster_accepts_every_node_with_the_label() -> None:
    cluster = three_zones().node("bare")
    body = web(spread(labels=WEB))
    assert cluster.feasible(body) == {"a1", "a2", "b1", "c1"}
    assert cluster.reasons(body) == {MISSING_LABEL: 1}


def test_max_skew_refuses_the_fuller_domains() -> None:
    cluster = three_zones().pod("w1", "a1", labels=WEB).pod("w2", "b1", labels=WEB)
    assert cluster.feasible(web(spread(labels=WEB))) == {"c1"}
    assert cluster.reasons(web(spread(labels=WEB)))[SPREAD_MISMATCH] == 3
    assert cluster.feasible(web(spread(labels=WEB, max_skew=2))) == {"a1", "a2", "b1", "c1"}


def test_a_pod_that_does_not_match_its_own_selector_adds_nothing_to_the_skew() -> None:
    cluster = three_zones().pod("w1", "a1", labels=WEB)
    other = pod_json("x", labels={"app": "x"}, spread=[spread(labels=WEB)])
    # a holds 1, b and c 0: skew on a is 1 + 0 - 0.
    assert cluster.feasible(other) == {"a1", "a2", "b1", "c1"}


def test_only_pods_of_the_namespace_that_match_and_are_not_terminating_count() -> None:
    cluster = (
        three_zones()
        .pod("w1", "a1", labels=WEB, namespace="elsewhere")
        .pod("w2", "b1", labels=WEB, deleting=True)
        .pod("w3", "c1", labels={"app": "db"})
    )
    assert cluster.feasible(web(spread(labels=WEB))) == {"a1", "a2", "b1", "c1"}


def test_min_domains_makes_the_minimum_zero_while_domains_are_missing() -> None:
    cluster = (
        Cluster()
        .node("a1", **{ZONE: "a"})
        .node("b1", **{ZONE: "b"})
        .pod("w1", "a1", labels=WEB)
        .pod("w2", "b1", labels=WEB)
    )
    assert cluster.feasible(web(spread(labels=WEB))) == {"a1", "b1"}
    assert cluster.feasible(web(spread(labels=WEB, minDomains=3))) == set()
    assert cluster.feasible(web(spread(labels=WEB, minDomains=2))) == {"a1", "b1"}


def test_node_affinity_policy_honor_leaves_out_domains_the_pod_cannot_use() -> None:
    cluster = three_zones().pod("w1", "a1", labels=WEB).pod("w2", "b1", labels=WEB)
    selector = {"nodeSelector": {ZONE: "a"}}
    # Honor (default): only zone a is a domain, so a's count is the minimum.
    assert cluster.feasible(web(spread(labels=WEB), **selector)) == {"a1", "a2"}
    # Ignore: zone c (empty) is a domain too.
    ignore = web(spread(labels=WEB, nodeAffinityPolicy="Ignore"), **selector)
    assert cluster.feasible(ignore) == set()


def test_node_taints_policy_honor_leaves_out_nodes_with_untolerated_taints() -> None:
    taint = {"key": "dedicated", "value": "x", "effect": "NoSchedule"}
    cluster = (
        Cluster()
        .node("a1", **{ZONE: "a"})
        .node("b1", **{ZONE: "b"})
        .tainted_node("c1", taint, **{ZONE: "c"})
        .pod("w1", "a1", labels=WEB)
        .pod("w2", "b1", labels=WEB)
    )
    # Ignore (default): the empty tainted zone c is the minimum, a and b are full.
    assert cluster.feasible(web(spread(labels=WEB))) == set()
    honor = web(spread(labels=WEB, nodeTaintsPolicy="Honor"))
    assert cluster.feasible(honor) == {"a1", "b1"}
    tolerating = web(
        spread(labels=WEB, nodeTaintsPolicy="Honor"),
        tolerations=[{"key": "dedicated", "operator": "Exists"}],
    )
    assert cluster.feasible(tolerating) == {"c1"}


def test_nodes_missing_another_constraints_key_are_not_domains() -> None:
    cluster = (
        three_zones()
        .node("bare")  # no zone: not a domain for either constraint
        .pod("w1", "bare", labels=WEB)
    )
    both = web(spread(labels=WEB), spread(HOST, labels=WEB))
    assert cluster.feasible(both) == {"a1", "a2", "b1", "c1"}


def test_two_constraints_must_both_hold() -> None:
    cluster = three_zones().pod("w1", "a1", labels=WEB).pod("w2", "b1", labels=WEB)
    zone_and_host = web(spread(labels=WEB, max_skew=2), spread(HOST, labels=WEB))
    assert cluster.feasible(zone_and_host) == {"a2", "c1"}


def test_an_empty_or_missing_selector_counts_no_pod() -> None:
    cluster = three_zones().pod("w1", "a1", labels=WEB).pod("w2", "a2", labels=WEB)
    empty = web(spread() | {"labelSelector": {}})
    missing = web(spread())
    assert cluster.feasible(empty) == {"a1", "a2", "b1", "c1"}
    assert cluster.feasible(missing) == {"a1", "a2", "b1", "c1"}


def test_match_label_keys_counts_only_pods_with_the_same_values() -> None:
    cluster = (
        three_zones()
        .pod("old1", "a1", labels={"app": "web", "rev": "1"})
        .pod("old2", "b1", labels={"app": "web", "rev": "1"})
    )
    body = pod_json(
        "web",
        labels={"app": "web", "rev": "2"},
        spread=[spread(labels=WEB, matchLabelKeys=["rev"])],
    )
    assert cluster.feasible(body) == {"a1", "a2", "b1", "c1"}
    assert cluster.feasible(web(spread(labels=WEB))) == {"c1"}


def test_a_burst_spreads_across_zones_as_it_is_decided() -> None:
    cluster = three_zones()
    zones = [cluster.place(web(spread(labels=WEB))) for _ in range(6)]
    per_zone = {z: sum(1 for n in zones if n and n[0] == z) for z in "abc"}
    assert per_zone == {"a": 2, "b": 2, "c": 2}


def test_schedule_anyway_scores_and_never_refuses() -> None:
    cluster = three_zones().pod("w1", "a1", labels=WEB).pod("w2", "b1", labels=WEB)
    soft = web(spread(labels=WEB) | {"whenUnsatisfiable": "ScheduleAnyway"})
    assert cluster.feasible(soft) == {"a1", "a2", "b1", "c1"}
    assert cluster.decide(soft).node == "c1"


def test_a_node_missing_a_soft_constraints_label_scores_worst() -> None:
    cluster = (
        Cluster()
        .node("a1", **{ZONE: "a"})
        .node("bare")
        .pod("w1", "a1", labels=WEB)
        .pod("w2", "a1", labels=WEB)
    )
    soft = web(spread(labels=WEB) | {"whenUnsatisfiable": "ScheduleAnyway"})
    assert cluster.decide(soft).node == "a1"


def test_sibling_colocation_outweighs_soft_spread_unless_weighted_up() -> None:
    owner = {"kind": "StatefulSet", "name": "web", "controller": True, "uid": "s"}

    def build(weights: ScoreWeights) -> Cluster:
        cluster = Cluster(weights).node("a1", **{ZONE: "a"}).node("b1", **{ZONE: "b"})
        sibling = pod_json("web-0", node="a1", labels=dict(WEB))
        sibling["metadata"]["ownerReferences"] = [owner]
        cluster.state.on_pod("ADDED", None, sibling)
        return cluster

    body = web(spread(labels=WEB) | {"whenUnsatisfiable": "ScheduleAnyway"})
    body["metadata"]["ownerReferences"] = [owner]
    assert build(ScoreWeights()).decide(body).node == "a1"
    assert build(ScoreWeights(topology_spread=20)).decide(body).node == "b1"
    # A hard constraint is a filter: co-location cannot break it.
    hard = web(spread(labels=WEB))
    hard["metadata"]["ownerReferences"] = [owner]
    cluster = build(ScoreWeights())
    cluster.place(hard)
    assert cluster.decide(web(spread(labels=WEB))).node == "a1"
