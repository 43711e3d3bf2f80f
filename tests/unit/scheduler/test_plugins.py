"""Filters and scores on plain data: no server."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import NodeBandwidth, Reservation
from bandwidth.request import BandwidthRequest, RequestPolicy
from scheduler.config import ScoreWeights
from scheduler.decide import decide
from scheduler.explain import unschedulable_message
from scheduler.nodeinfo import NodeFacts, NodeInfo
from scheduler.plugins.framework import PodContext
from scheduler.plugins.registry import default_filters, default_scorers
from scheduler.podfacts import WorkloadKey, read_pod, workload_of


def node(
    name: str,
    *,
    network: tuple[int, int] = (1000, 1000),
    local: tuple[int, int] = (20000, 20000),
    labels: dict[str, str] | None = None,
    taints: tuple[dict[str, Any], ...] = (),
    cpu: int = 4000,
    ready: bool = True,
    unschedulable: bool = False,
    reservations: dict[str, BandwidthRequest] | None = None,
) -> NodeInfo:
    info = NodeInfo(name)
    info.facts = NodeFacts(
        name=name,
        labels=labels or {},
        taints=taints,
        unschedulable=unschedulable,
        ready=ready,
        allocatable={"cpu": cpu, "memory": 8 << 30, "pods": 110},
    )
    info.set_bandwidth(
        NodeBandwidth(
            name=name,
            node=name,
            capacity=Usage(LinkBudget(*local), LinkBudget(*network)),
            reservations={
                uid: Reservation(uid, uid, "ns", request)
                for uid, request in (reservations or {}).items()
            },
        )
    )
    return info


def pod(
    name: str = "p",
    *,
    egress: str | None = "100M",
    ingress: str | None = None,
    spec: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    owner: tuple[str, str] | None = None,
) -> PodContext:
    notes = dict(annotations or {})
    if egress is not None:
        notes["kubernetes.io/egress-bandwidth"] = egress
    if ingress is not None:
        notes["kubernetes.io/ingress-bandwidth"] = ingress
    metadata: dict[str, Any] = {"name": name, "namespace": "ns", "uid": name, "annotations": notes}
    if owner:
        metadata["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    body = {
        "metadata": metadata,
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "500m"}}}]}
        | (spec or {}),
    }
    facts = read_pod(body, RequestPolicy())
    return PodContext(facts, workload_of(facts, {}))


FILTERS = default_filters()
SCORERS = default_scorers(ScoreWeights())


def test_network_and_local_headroom_both_bound_the_pod() -> None:
    nic_full = node("a", reservations={"x": BandwidthRequest(950, 0)})
    switch_full = node("b", local=(1000, 1000), reservations={"y": BandwidthRequest(0, 0)})
    switch_full.set_bandwidth(
        NodeBandwidth(
            "b",
            "b",
            Usage(LinkBudget(1000, 1000), LinkBudget(5000, 5000)),
            {"z": Reservation("z", "z", "ns", BandwidthRequest(950, 0, link_local=True))},
        )
    )
    decision = decide(pod(egress="100M"), [nic_full, switch_full], FILTERS, SCORERS)
    assert decision.node is None
    assert decision.reasons == Counter(
        {
            "insufficient network uplink bandwidth (need 100 Mbps)": 1,
            "insufficient local uplink bandwidth (need 100 Mbps)": 1,
        }
    )


def test_link_local_pods_spare_the_nic() -> None:
    nic_full = node("a", reservations={"x": BandwidthRequest(1000, 1000)})
    ctx = pod(egress="100M", annotations={"bandwidth.vaclab.org/link-local": "true"})
    assert decide(ctx, [nic_full], FILTERS, SCORERS).node == "a"


def test_downlink_is_checked_separately_from_uplink() -> None:
    full_down = node("a", reservations={"x": BandwidthRequest(0, 990)})
    decision = decide(pod(egress="10M", ingress="20M"), [full_down], FILTERS, SCORERS)
    assert list(decision.reasons) == ["insufficient network downlink bandwidth (need 20 Mbps)"]


def test_standard_predicates_and_summary() -> None:
    nodes = [
        node("cordoned", unschedulable=True),
        node("down", ready=False),
        node("tainted", taints=({"key": "dedicated", "value": "infra", "effect": "NoSchedule"},)),
        node("small", cpu=200),
        node("wrong-zone", labels={"zone": "b"}),
    ]
    ctx = pod(spec={"nodeSelector": {"zone": "a"}})
    decision = decide(ctx, nodes, FILTERS, SCORERS)
    assert decision.node is None
    assert unschedulable_message(decision.nodes_considered, decision.reasons) == (
        "0/5 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {dedicated: infra}, 1 node(s) were not ready, "
        "1 node(s) were unschedulable."
    )


def test_required_node_affinity_operators() -> None:
    term = {
        "matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["a", "b"]},
            {"key": "gpu", "operator": "DoesNotExist"},
            {"key": "cores", "operator": "Gt", "values": ["8"]},
        ]
    }
    spec = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
            }
        }
    }
    nodes = [
        node("ok", labels={"zone": "b", "cores": "16"}),
        node("gpu", labels={"zone": "a", "cores": "16", "gpu": "1"}),
        node("few", labels={"zone": "a", "cores": "4"}),
    ]
    assert decide(pod(spec=spec), nodes, FILTERS, SCORERS).node == "ok"


def test_tolerations_match_key_value_and_effect() -> None:
    taint = {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}
    tainted = [node("t", taints=(taint,))]
    wrong = {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "other"}]}
    exists = {"tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]}
    assert decide(pod(spec=wrong), tainted, FILTERS, SCORERS).node is None
    assert decide(pod(spec=exists), tainted, FILTERS, SCORERS).node == "t"


def test_siblings_colocate_then_first_pod_goes_where_most_can_follow() -> None:
    workload = WorkloadKey("StatefulSet", "ns", "peers")
    crowded, empty_a, empty_b = node("a"), node("b"), node("c")
    crowded.set_bandwidth(
        NodeBandwidth(
            "a",
            "a",
            Usage(LinkBudget(20000, 20000), LinkBudget(1000, 1000)),
            {"o": Reservation("o", "o", "ns", BandwidthRequest(700, 0))},
        )
    )
    first = PodContext(pod(owner=("StatefulSet", "peers")).pod, workload, expected_replicas=5)
    assert decide(first, [crowded, empty_a, empty_b], FILTERS, SCORERS).node == "b"

    sibling = pod("s1", owner=("StatefulSet", "peers")).pod
    empty_b.assume(sibling, workload)
    second = PodContext(pod("p2", owner=("StatefulSet", "peers")).pod, workload, 5, 1)
    assert decide(second, [crowded, empty_a, empty_b], FILTERS, SCORERS).node == "c"


def test_deployment_pods_are_siblings_through_their_replicaset() -> None:
    facts = pod(owner=("ReplicaSet", "relays-5d8f7c9b4")).pod
    assert workload_of(facts, {"ns/relays-5d8f7c9b4": "relays"}) == WorkloadKey(
        "Deployment", "ns", "relays"
    )
    assert workload_of(facts, {"ns/relays-5d8f7c9b4": ""}) == WorkloadKey(
        "ReplicaSet", "ns", "relays-5d8f7c9b4"
    )


def test_bad_annotation_is_kept_as_an_explanation_not_a_zero() -> None:
    ctx = pod(egress="fast")
    assert ctx.pod.invalid == (
        "annotation kubernetes.io/egress-bandwidth='fast' is invalid: "
        "not a quantity (expected e.g. 100M, 1G, or a bare number of Mbps)"
    )


def test_ties_break_by_node_name() -> None:
    assert decide(pod(), [node("b"), node("a"), node("c")], FILTERS, SCORERS).node == "a"


def test_assumed_and_ledger_entries_for_one_pod_count_once() -> None:
    info = node("a", reservations={"p": BandwidthRequest(100, 0)})
    info.assume(pod("p").pod, None)
    assert info.bandwidth_used.network == LinkBudget(100, 0)


def test_a_pods_own_reservation_does_not_count_against_it() -> None:
    info = node("a", reservations={"p": BandwidthRequest(600, 0)})
    assert decide(pod("p", egress="600M"), [info], FILTERS, SCORERS).node == "a"
    assert decide(pod("q", egress="600M"), [info], FILTERS, SCORERS).node is None


def test_bare_pods_prefer_the_node_with_more_bandwidth_left() -> None:
    busy = node("a", reservations={"x": BandwidthRequest(800, 800)})
    idle = node("b")
    assert decide(pod(egress="100M"), [busy, idle], FILTERS, SCORERS).node == "b"


def test_a_cordoned_node_takes_pods_that_tolerate_its_taint_as_kube_scheduler_reads_it() -> None:
    cordoned = [node("cordoned", unschedulable=True)]
    tolerations = {
        "by key": ([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}], True),
        "everything": ([{"operator": "Exists"}], True),
        "NoSchedule only": (
            [
                {
                    "key": "node.kubernetes.io/unschedulable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                }
            ],
            False,
        ),
        "other key": ([{"key": "dedicated", "operator": "Exists"}], False),
    }
    for name, (given, fits) in tolerations.items():
        decision = decide(pod(spec={"tolerations": given}), cordoned, FILTERS, SCORERS)
        assert (decision.node == "cordoned") is fits, name
