"""The scheduler's view with DRA sharing on: what claims hold is charged on their node (a fourth
source beside ledger, assumed and observed), freed when they go, and never charged twice."""

from __future__ import annotations

from typing import Any

from bandwidth.budget import LinkBudget, Usage
from bandwidth.dra import NO_HOLDING, ClaimHold, DraHolding
from bandwidth.model import new_bandwidth_object
from kubeio.watchcache import ADDED
from scheduler.cluster import ClusterState
from scheduler.config import SchedulerConfig
from scheduler.decider import Decider
from scheduler.podfacts import read_pod
from scheduler.queue import SchedulingQueue

CAPACITY = Usage(local=LinkBudget(20000, 20000), network=LinkBudget(1000, 1000))


def node(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "allocatable": {"cpu": "8", "memory": "8Gi", "pods": "110"},
        },
    }


def pod(name: str, up: str, down: str, *, node_name: str = "", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "lab",
            "uid": f"uid-{name}",
            "annotations": {
                "kubernetes.io/egress-bandwidth": up,
                "kubernetes.io/ingress-bandwidth": down,
            },
        },
        "spec": {
            "schedulerName": "vaclab-scheduler",
            "nodeName": node_name,
            "containers": [{"name": "c", "image": "x"}],
            **spec,
        },
        "status": {"phase": "Running" if node_name else "Pending"},
    }


def hold(name: str, net_up: int, net_down: int, *pods: str) -> ClaimHold:
    link = LinkBudget(net_up, net_down)
    return ClaimHold("lab", name, f"uid-{name}", Usage(local=link, network=link), frozenset(pods))


def cluster(*names: str) -> tuple[ClusterState, SchedulingQueue]:
    queue = SchedulingQueue()
    state = ClusterState(SchedulerConfig(), queue)
    for name in names:
        state.on_node(ADDED, None, node(name))
        ledger = new_bandwidth_object(name, CAPACITY)
        ledger["metadata"]["generation"] = 1
        state.on_bandwidth(ADDED, None, ledger)
    return state, queue


def test_what_claims_hold_is_not_offered_to_our_pods() -> None:
    state, _ = cluster("n1", "n2")
    state.set_dra_holding("n1", DraHolding.of([hold("dra-a", 900, 100)]))
    assert state.nodes["n1"].free_bandwidth == (19100, 19900, 100, 900)
    assert state.dra_usage("n1").network == LinkBudget(900, 100)
    ctx = state.context_for(read_pod(pod("web-0", "200M", "200M"), state.config.request_policy))
    decision = Decider(state.config.weights).choose(state, ctx)
    assert decision.node == "n2"
    assert "insufficient network uplink bandwidth" in " ".join(decision.reasons)


def test_a_claim_freed_retries_the_pods_that_waited_for_room() -> None:
    state, queue = cluster("n1")
    state.set_dra_holding("n1", DraHolding.of([hold("dra-a", 1000, 1000)]))
    facts = read_pod(pod("web-0", "200M", "200M"), state.config.request_policy)
    queue.add_or_update(facts)
    assert queue.pop(timeout=0) is not None
    queue.retry(facts.uid, unschedulable=True)
    assert queue.depth()["unschedulable"] == 1
    state.set_dra_holding("n1", DraHolding.of([hold("dra-a", 1000, 1000), hold("b", 1, 1)]))
    assert queue.depth()["unschedulable"] == 1  # more held: nothing to retry
    state.set_dra_holding("n1", NO_HOLDING)
    assert queue.depth()["unschedulable"] == 0
    assert state.nodes["n1"].free_bandwidth == (20000, 20000, 1000, 1000)


def test_a_pod_a_claim_holds_for_is_not_charged_again_for_its_shaping_annotations() -> None:
    state, _ = cluster("n1")
    state.on_pod(ADDED, None, pod("dra-pod", "300M", "300M", node_name="n1"))
    assert state.nodes["n1"].free_bandwidth == (19700, 19700, 700, 700)
    state.set_dra_holding("n1", DraHolding.of([hold("claim", 300, 300, "uid-dra-pod")]))
    assert state.nodes["n1"].free_bandwidth == (19700, 19700, 700, 700)
    assert state.bound_pod_charges("n1") == {}
    # Another scheduler's pod with annotations and no claim is still observed.
    state.on_pod(ADDED, None, pod("other", "100M", "100M", node_name="n1"))
    assert state.nodes["n1"].free_bandwidth == (19600, 19600, 600, 600)
    assert set(state.bound_pod_charges("n1")) == {"uid-other"}


def test_a_pod_with_resource_claims_is_refused_as_a_constraint_we_cannot_honour() -> None:
    spec = {"resourceClaims": [{"name": "bw", "resourceClaimTemplateName": "t"}]}
    facts = read_pod(pod("web-0", "1M", "1M", **spec), SchedulerConfig().request_policy)
    assert facts.unsupported == ("resource claims (DRA allocation)",)
