"""A pod as the books read it (kubeio.pods), workloads through ReplicaSets, and the slim cache
transform."""

from __future__ import annotations

from typing import Any

from accounting.pods import Workload, slim_pod, workload_of
from bandwidth.request import BandwidthRequest, RequestPolicy
from kubeio.pods import PodBasics, read_pod_basics

RS_OWNER = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "name": "web-5d8f",
    "uid": "rs-uid",
    "controller": True,
}


def read(raw: dict[str, Any]) -> PodBasics:
    return read_pod_basics(raw, RequestPolicy())


def pod_json(**metadata: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-5d8f-x", "namespace": "lab", "uid": "p1", **metadata},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Running", "podIP": "10.1.2.3", "conditions": []},
    }


def test_reads_what_the_books_need() -> None:
    notes = {"a": "1", "kubernetes.io/egress-bandwidth": "10M"}
    pod = read(pod_json(annotations=notes, ownerReferences=[RS_OWNER]))
    assert (pod.uid, pod.key, pod.node_name, pod.phase, pod.pod_ip) == (
        "p1",
        "lab/web-5d8f-x",
        "n1",
        "Running",
        "10.1.2.3",
    )
    assert pod.bandwidth == BandwidthRequest(10, 0) and pod.asks_bandwidth
    assert pod.owner == Workload("ReplicaSet", "web-5d8f", "rs-uid")
    assert not pod.terminal


def test_a_replicaset_controlled_by_a_deployment_reports_the_deployment() -> None:
    pod = read(pod_json(ownerReferences=[RS_OWNER]))
    deployment = Workload("Deployment", "web", "dep-uid")
    owners = {("lab", "web-5d8f"): deployment}
    assert workload_of(pod, lambda ns, name: owners.get((ns, name))) == deployment


def test_a_bare_replicaset_or_other_owner_is_reported_as_is() -> None:
    pod = read(pod_json(ownerReferences=[RS_OWNER]))
    assert workload_of(pod, lambda ns, name: None) == Workload("ReplicaSet", "web-5d8f", "rs-uid")
    job_owner = {"kind": "Job", "name": "batch", "uid": "j", "controller": True}
    job_pod = read(pod_json(ownerReferences=[job_owner]))
    assert workload_of(job_pod, lambda ns, name: None) == Workload("Job", "batch", "j")


def test_owners_that_are_not_controllers_are_ignored() -> None:
    reference = dict(RS_OWNER, controller=False)
    pod = read(pod_json(ownerReferences=[reference]))
    assert pod.owner is None
    assert workload_of(pod, lambda ns, name: None) is None


def test_terminal_phases() -> None:
    for phase, terminal in [("Succeeded", True), ("Failed", True), ("Pending", False)]:
        raw = pod_json()
        raw["status"]["phase"] = phase
        assert read(raw).terminal is terminal


def test_slim_pod_keeps_only_what_the_reader_reads() -> None:
    raw = pod_json(
        annotations={"kubernetes.io/egress-bandwidth": "10M", "huge": "x" * 1000},
        ownerReferences=[RS_OWNER],
        managedFields=[{"manager": "kubectl"}],
        resourceVersion="42",
    )
    slim = slim_pod(raw, {"kubernetes.io/egress-bandwidth"})
    assert slim["metadata"]["annotations"] == {"kubernetes.io/egress-bandwidth": "10M"}
    assert "managedFields" not in slim["metadata"]
    assert "containers" not in slim["spec"]
    assert read(slim) == read(
        pod_json(annotations={"kubernetes.io/egress-bandwidth": "10M"}, ownerReferences=[RS_OWNER])
    )


def test_slim_unbound_pod_has_no_node() -> None:
    raw = pod_json()
    del raw["spec"]["nodeName"]
    assert read(slim_pod(raw, ())).node_name == ""
