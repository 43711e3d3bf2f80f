"""The scheduler's verdict and the metric labels it is counted under: no server.

The labels must stay bounded however pods are written: whatever bandwidth, cpu, taints or bad
annotations the pods carry, the set of ``(reason, axis)`` pairs is drawn from a small fixed
vocabulary, never from the numbers in the messages.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bandwidth.budget import AXES
from bandwidth.request import RequestPolicy
from kubeio.watchcache import ADDED
from scheduler.cluster import ClusterState
from scheduler.config import SchedulerConfig, ScoreWeights
from scheduler.decider import Decider
from scheduler.metrics import INSUFFICIENT_BANDWIDTH, reason_labels, unschedulable_labels
from scheduler.podfacts import read_pod
from scheduler.queue import SchedulingQueue
from scheduler.verdict import (
    INVALID_REQUEST,
    UNSCHEDULABLE,
    UNSUPPORTED_CONSTRAINT,
    judge,
    refusal,
)

POLICY = RequestPolicy()


def state_with_nodes() -> ClusterState:
    state = ClusterState(SchedulerConfig(), SchedulingQueue())
    for name, taint in (("a", None), ("b", {"key": "team", "value": "x", "effect": "NoSchedule"})):
        state.on_node(ADDED, None, {
            "metadata": {"name": name, "labels": {}},
            "spec": {"taints": [taint] if taint else []},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]},
        })  # fmt: skip
        state.on_bandwidth(ADDED, None, {
            "apiVersion": "networking.vaclab.org/v1", "kind": "Bandwidth",
            "metadata": {"name": name, "generation": 1, "resourceVersion": "1"},
            "spec": {"node": name, "capacity": {"local": {"ulMbps": 20000, "dlMbps": 20000},
                                               "network": {"ulMbps": 1000, "dlMbps": 1000}},
                     "reservations": []},
        })  # fmt: skip
    return state


def pod_json(
    name: str, annotations: dict[str, str], cpu: str = "100m", **spec: object
) -> dict[str, object]:
    return {
        "metadata": {"name": name, "namespace": "lab", "uid": f"uid-{name}",
                     "annotations": annotations},
        "spec": {"schedulerName": "vaclab-scheduler",
                 "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}], **spec},
    }  # fmt: skip


def test_refusals_come_before_any_node_and_placement_assumes_only_when_asked() -> None:
    state = state_with_nodes()
    decider = Decider(ScoreWeights())
    bad = read_pod(pod_json("bad", {"kubernetes.io/egress-bandwidth": "fast"}), POLICY)
    verdict = judge(state, decider, bad, assume=True)
    assert (verdict.node, verdict.reason, verdict.refused) == (None, INVALID_REQUEST, True)
    assert verdict.message == bad.invalid == refusal(bad).message  # type: ignore[union-attr]
    ports = pod_json("ports", {}, containers=[{"name": "c", "ports": [{"hostPort": 80}]}])
    unsupported = judge(state, decider, read_pod(ports, POLICY), assume=True)
    if unsupported.refused:  # until host ports are evaluated
        assert unsupported.reason == UNSUPPORTED_CONSTRAINT
        assert unsupported.message.startswith("unsupported scheduling constraint(s): ")
    big = read_pod(pod_json("big", {"kubernetes.io/egress-bandwidth": "5G"}), POLICY)
    refused = judge(state, decider, big, assume=True)
    assert (refused.reason, refused.refused) == (UNSCHEDULABLE, False)
    assert refused.message == (
        "0/2 nodes are available: 1 insufficient network uplink bandwidth (need 5000 Mbps), "
        "1 node(s) had untolerated taint {team: x}."
    )
    fits = read_pod(pod_json("fits", {"kubernetes.io/egress-bandwidth": "600M"}), POLICY)
    looked = judge(state, decider, fits, assume=False)
    assert looked.node == "a" and judge(state, decider, fits, assume=False).node == "a"
    twin = read_pod(pod_json("twin", {"kubernetes.io/egress-bandwidth": "600M"}), POLICY)
    assert judge(state, decider, fits, assume=True).node == "a"
    assert judge(state, decider, twin, assume=True).reason == UNSCHEDULABLE  # a is taken


def test_reason_labels_drop_numbers_and_particulars_and_keep_the_axis() -> None:
    for axis in AXES:
        assert reason_labels(f"insufficient {axis} bandwidth (need 2000 Mbps)") == (
            INSUFFICIENT_BANDWIDTH,
            str(axis),
        )
    assert reason_labels("node(s) had untolerated taint {team: x}") == (
        "node(s) had untolerated taint",
        "",
    )
    assert reason_labels("node(s) had an unreadable Bandwidth object: spec.capacity: bad") == (
        "node(s) had an unreadable Bandwidth object",
        "",
    )
    assert reason_labels("Insufficient cpu") == ("Insufficient cpu", "")
    assert reason_labels("node(s) had 3 volumes attached") == ("node(s) had volumes attached", "")


quantities = st.one_of(
    st.integers(1, 10**6).map(lambda n: f"{n}M"),
    st.integers(1, 10**4).map(str),
    st.sampled_from(["fast", "-5M", "2T", "1.5G", ""]),
)


@settings(max_examples=150, deadline=None)
@given(
    pods=st.lists(
        st.tuples(quantities, quantities, st.integers(1, 8000), st.booleans()),
        min_size=1,
        max_size=25,
    )
)
def test_label_pairs_stay_in_a_fixed_vocabulary_whatever_the_pods_ask(
    pods: list[tuple[str, str, int, bool]],
) -> None:
    state = state_with_nodes()
    decider = Decider(ScoreWeights())
    seen = set()
    for index, (egress, ingress, millicpu, host_port) in enumerate(pods):
        extra = {"containers": [{"name": "c", "ports": [{"hostPort": 80}]}]} if host_port else {}
        raw = pod_json(
            f"p{index}",
            {"kubernetes.io/egress-bandwidth": egress, "kubernetes.io/ingress-bandwidth": ingress},
            cpu=f"{millicpu}m",
            **extra,
        )
        verdict = judge(state, decider, read_pod(raw, POLICY), assume=True)
        if not verdict.placed:
            seen.add(unschedulable_labels(verdict))
    vocabulary = {
        ("invalid request", ""),
        ("unsupported constraint", ""),
        ("no nodes", ""),
        ("node(s) had untolerated taint", ""),
        ("Insufficient cpu", ""),
        ("node(s) didn't have free ports for the requested pod ports", ""),
        *((INSUFFICIENT_BANDWIDTH, str(axis)) for axis in AXES),
    }
    assert seen <= vocabulary
    assert not any(ch.isdigit() for labels in seen for label in labels for ch in label)
