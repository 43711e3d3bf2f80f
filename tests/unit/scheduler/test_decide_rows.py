"""``decide_rows`` (every node at once, ``scheduler.nodetable``) decides exactly as ``decide``
(one node and plugin at a time) on the same state: the same node, the same nodes examined and
found feasible, the same reasons counted in the same order, the same scores.

Clusters are drawn at random with everything the row methods special-case: nodes not ready,
cordoned, tainted (hard and soft), labelled for selectors and affinities, deleted, without a
Bandwidth object or with an unreadable one, with a full ledger, overcommitted, holding the
pending pod's own reservation, with pods nominated to them; pods with tolerations, selectors,
node affinities, host ports (a filter without row methods), siblings and bandwidth or none.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import Reservation, new_bandwidth_object
from bandwidth.request import BandwidthRequest, RequestPolicy
from kubeio.watchcache import ADDED, DELETED
from scheduler.cluster import ClusterState
from scheduler.config import SchedulerConfig
from scheduler.decide import Decision, decide, decide_rows, feasible_nodes_to_find
from scheduler.decider import Decider
from scheduler.podfacts import read_pod
from scheduler.queue import SchedulingQueue

JSON = dict[str, Any]
SCHEDULER = "vaclab-scheduler"
PENDING_UID = "pending-0"

node_kinds = st.fixed_dictionaries(
    {
        "ready": st.sampled_from([True, True, True, False]),
        "cordoned": st.sampled_from([False, False, False, True]),
        "taint": st.sampled_from([None, None, "NoSchedule", "PreferNoSchedule"]),
        "zone": st.sampled_from(["a", "b", "c"]),
        "cpu": st.sampled_from(["1", "2", "4"]),
        "ledger": st.sampled_from(["ok", "ok", "ok", "none", "unreadable", "full"]),
        "nic": st.sampled_from([100, 1000, 10000]),
        "holds_pending": st.sampled_from([False] * 7 + [True]),
        "deleted": st.sampled_from([False] * 9 + [True]),
        "nominated": st.sampled_from([False] * 9 + [True]),
        "pods": st.lists(
            st.tuples(
                st.sampled_from(["", "web", "db"]),
                st.sampled_from(["100m", "500m", "900m"]),
                st.sampled_from([0, 50, 400]),
                st.sampled_from([False] * 5 + [True]),
            ),
            max_size=4,
        ),
    }
)

pending_kinds = st.fixed_dictionaries(
    {
        "group": st.sampled_from(["", "web", "db"]),
        "cpu": st.sampled_from(["100m", "500m", "3"]),
        "mbps": st.sampled_from([0, 50, 400, 5000]),
        "tolerate": st.sampled_from([None, "NoSchedule", "unschedulable", "all"]),
        "selector": st.sampled_from([None, "a"]),
        "required": st.sampled_from([None, ["a", "b"]]),
        "preferred": st.sampled_from([None, "c"]),
        "port": st.sampled_from([None, None, 8080]),
        "priority": st.sampled_from([0, 100]),
    }
)


def node_json(name: str, kind: JSON) -> JSON:
    taints: list[JSON] = []
    if kind["taint"]:
        taints.append({"key": "dedicated", "value": "x", "effect": kind["taint"]})
    return {
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": kind["zone"]},
        },
        "spec": {"taints": taints, "unschedulable": kind["cordoned"]},
        "status": {
            "allocatable": {"cpu": kind["cpu"], "memory": "4Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if kind["ready"] else "False"}],
        },
    }


def pod_json(
    name: str,
    uid: str,
    *,
    group: str = "",
    cpu: str = "100m",
    mbps: int = 0,
    node: str = "",
    port: int | None = None,
    **spec: Any,
) -> JSON:
    metadata: JSON = {"name": name, "namespace": "ns", "uid": uid, "labels": {}}
    if group:
        metadata["labels"]["app"] = group
        metadata["ownerReferences"] = [
            {"kind": "StatefulSet", "name": group, "uid": f"owner-{group}", "controller": True}
        ]
    if mbps:
        metadata["annotations"] = {
            "kubernetes.io/egress-bandwidth": f"{mbps}M",
            "kubernetes.io/ingress-bandwidth": f"{mbps}M",
        }
    container: JSON = {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}
    if port:
        container["ports"] = [{"containerPort": port, "hostPort": port}]
    body: JSON = {
        "metadata": metadata,
        "spec": {"schedulerName": SCHEDULER, "containers": [container], **spec},
        "status": {"phase": "Running" if node else "Pending"},
    }
    if node:
        body["spec"]["nodeName"] = node
    return body


def pending_json(kind: JSON) -> JSON:
    spec: JSON = {"priority": kind["priority"]}
    if kind["tolerate"] == "all":
        spec["tolerations"] = [{"operator": "Exists"}]
    elif kind["tolerate"] == "unschedulable":
        spec["tolerations"] = [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]
    elif kind["tolerate"]:
        spec["tolerations"] = [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
    if kind["selector"]:
        spec["nodeSelector"] = {"topology.kubernetes.io/zone": kind["selector"]}
    affinity: JSON = {}
    zone = "topology.kubernetes.io/zone"
    if kind["required"]:
        expression = {"key": zone, "operator": "In", "values": kind["required"]}
        affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": [{"matchExpressions": [expression]}]
        }
    if kind["preferred"]:
        expression = {"key": zone, "operator": "In", "values": [kind["preferred"]]}
        affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": 10, "preference": {"matchExpressions": [expression]}}
        ]
    if affinity:
        spec["affinity"] = {"nodeAffinity": affinity}
    return pod_json(
        "pending",
        PENDING_UID,
        group=kind["group"],
        cpu=kind["cpu"],
        mbps=kind["mbps"],
        port=kind["port"],
        **spec,
    )


def build(kinds: list[JSON]) -> ClusterState:
    state = ClusterState(SchedulerConfig(scheduler_name=SCHEDULER), SchedulingQueue())
    for group in ("web", "db"):
        state.on_statefulset(
            ADDED, None, {"metadata": {"name": group, "namespace": "ns"}, "spec": {"replicas": 9}}
        )
    for index, kind in enumerate(kinds):
        name = f"n{index:02d}"
        body = node_json(name, kind)
        state.on_node(ADDED, None, body)
        nic = kind["nic"]
        capacity = Usage(LinkBudget(20000, 20000), LinkBudget(nic, nic))
        reservations = []
        if kind["holds_pending"]:
            request = BandwidthRequest(400, 400)
            reservations.append(Reservation(PENDING_UID, "pending", "ns", request))
        ledger = new_bandwidth_object(name, capacity, reservations=reservations)
        if kind["ledger"] == "unreadable":
            ledger["spec"]["capacity"] = "nonsense"
        if kind["ledger"] != "none":
            state.on_bandwidth(ADDED, None, ledger)
        if kind["ledger"] == "full":
            state.limit_ledger(name, len(reservations))
        for number, (group, cpu, mbps, ports) in enumerate(kind["pods"]):
            uid = f"{name}-pod-{number}"
            port = 8080 if ports else None
            body = pod_json(uid, uid, group=group, cpu=cpu, mbps=mbps, node=name, port=port)
            state.on_pod(ADDED, None, body)
        if kind["nominated"]:
            uid = f"{name}-nominated"
            nominee = pod_json(uid, uid, cpu="500m", mbps=400, priority=100)
            nominee["status"]["nominatedNodeName"] = name
            state.on_pod(ADDED, None, nominee)
        if kind["deleted"]:
            state.on_node(DELETED, node_json(name, kind), None)
    return state


def same(left: Decision, right: Decision) -> None:
    assert left == right
    assert list(left.reasons.items()) == list(right.reasons.items())


@settings(max_examples=300, deadline=None)
@given(
    kinds=st.lists(node_kinds, min_size=1, max_size=14), pending=pending_kinds, start=st.integers()
)
def test_rows_decide_as_nodes(kinds: list[JSON], pending: JSON, start: int) -> None:
    state = build(kinds)
    decider = Decider(state.config.weights)
    ctx = state.context_for(read_pod(pending_json(pending), RequestPolicy()))
    nodes = list(state.nodes.values())
    start %= len(nodes)
    preferred = state.sibling_nodes(ctx.workload)
    by_node = decide(
        ctx,
        nodes,
        decider.filters,
        decider.scorers,
        start=start,
        preferred=preferred,
        keep_scores=len(nodes),
    )
    by_row = decide_rows(
        ctx,
        state.table,
        decider.filters,
        decider.scorers,
        start=start,
        preferred=state.table.rows(preferred),
        keep_scores=len(nodes),
    )
    same(by_node, by_row)


@pytest.mark.parametrize("percentage", [0, 30, 100, None])
def test_a_burst_decides_as_before(percentage: int | None) -> None:
    """A burst of siblings placed one after another on a few hundred nodes (the sample cuts
    the examination short, the preferred nodes come first, assumed pods change the rows)."""
    state = build(burst_nodes())
    decider = Decider(state.config.weights)
    start = 0
    placed: Counter[str] = Counter()
    examined_fewer = False
    for number in range(120):
        group = ("web", "db", "")[number % 3]
        body = pod_json(f"p{number}", f"p{number}", group=group, cpu="200m", mbps=300)
        ctx = state.context_for(read_pod(body, RequestPolicy()))
        nodes = list(state.nodes.values())
        preferred = state.sibling_nodes(ctx.workload)
        by_node = decide(
            ctx,
            nodes,
            decider.filters,
            decider.scorers,
            start=start % len(nodes),
            preferred=preferred,
            keep_scores=5,
            percentage=100 if percentage is None else percentage,  # no filter runs per node
        )
        by_row = decide_rows(
            ctx,
            state.table,
            decider.filters,
            decider.scorers,
            start=start % len(nodes),
            preferred=state.table.rows(preferred),
            keep_scores=5,
            percentage=percentage,
        )
        same(by_node, by_row)
        examined_fewer = examined_fewer or by_row.nodes_considered < len(state.table.present_rows())
        start += by_node.nodes_considered
        if by_node.node is not None:
            state.assume(ctx, by_node.node)
            placed[by_node.node] += 1
    assert placed  # the burst placed pods, so later decisions saw assumed ones
    assert examined_fewer == (percentage not in (100, None))  # the sample cut the examination short


@pytest.mark.parametrize(
    ("total", "percentage", "enough"),
    [
        (80, 0, 80),
        (1000, 0, 420),
        (5000, 0, 500),
        (20000, 0, 1000),
        (5000, 100, 5000),
        (5000, 1, 100),
        (5000, 30, 1500),
        (80, 30, 80),
    ],
)
def test_feasible_nodes_to_find_as_kube_scheduler(total: int, percentage: int, enough: int) -> None:
    assert feasible_nodes_to_find(total, percentage) == enough


def burst_nodes() -> list[JSON]:
    return [
        {
            "ready": index % 17 != 0,
            "cordoned": index % 23 == 0,
            "taint": "PreferNoSchedule" if index % 5 == 0 else None,
            "zone": "abc"[index % 3],
            "cpu": "24",
            "ledger": "none" if index % 31 == 0 else "ok",
            "nic": (100, 1000, 10000)[index % 3],
            "holds_pending": False,
            "deleted": index % 41 == 0,
            "nominated": False,
            "pods": [("web", "100m", 50, False)] if index % 7 == 0 else [],
        }
        for index in range(300)
    ]


def test_by_default_every_node_unless_a_filter_runs_per_node() -> None:
    """Without a percentage, a pod whose filters all run over the rows is decided on the
    whole cluster; one with a host port (NodePorts runs per node) on kube's adaptive share."""
    state = build(burst_nodes())
    decider = Decider(state.config.weights)
    present = len(state.table.present_rows())
    plain = state.context_for(read_pod(pod_json("plain", "plain", cpu="1m"), RequestPolicy()))
    ported = state.context_for(
        read_pod(pod_json("ported", "ported", cpu="1m", port=9090), RequestPolicy())
    )
    assert decider.choose(state, plain).nodes_considered == present
    assert decider.choose(state, ported).nodes_considered < present
