"""``kubectl bandwidth explain`` sees the volume objects the scheduler sees."""

from __future__ import annotations

from kubectl_bandwidth.diagnosis import explain_pod
from kubectl_bandwidth.snapshot import VOLUME_KINDS, ClusterLists, build_snapshot
from kubectl_bandwidth.whatif import read_workload, simulate
from kubeio.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, STORAGECLASSES
from tests.unit.kubectl_bandwidth.builders import CONFIG, bandwidth, node, pod
from tests.unit.scheduler.volumes.builders import pv, pvc, storage_class


def test_explain_names_the_node_that_holds_the_claims_volume() -> None:
    waiting = pod("db-0", namespace="ns")
    waiting["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    lists = ClusterLists(
        nodes=[node("n1"), node("n2")],
        bandwidths=[bandwidth("n1"), bandwidth("n2")],
        pods=[waiting],
        volumes={
            STORAGECLASSES: [storage_class()],
            PERSISTENTVOLUMES: [pv("disk", node="n2")],
            PERSISTENTVOLUMECLAIMS: [pvc("data")],
        },
    )
    explanation = explain_pod(build_snapshot(lists, CONFIG), waiting)
    assert explanation.best == "n2"
    [refused] = [v for v in explanation.verdicts if not v.feasible]
    assert (refused.node, refused.reasons) == (
        "n1",
        ("node(s) didn't find available persistent volumes to bind",),
    )


def test_kubectl_reads_every_kind_the_scheduler_watches() -> None:
    """No request is made: the scheduler's caches only start when told to."""
    from kubernetes.client import Configuration

    from kubeio.rest import KubeApi
    from scheduler.loop import Scheduler

    api = KubeApi(Configuration())
    try:
        watched = {cache.kind for cache in Scheduler(api, CONFIG).caches}
    finally:
        api.close()
    read = {"nodes", "bandwidths", "replicasets", "statefulsets", "pods", "namespaces"}
    # PodDisruptionBudgets only choose a preemption's victims, which kubectl does not predict.
    watched.discard("poddisruptionbudgets")
    assert watched == read | {kind.plural for kind in VOLUME_KINDS}


def _statefulset_with_disks(replicas: int, storage: str | None) -> dict[str, object]:
    claim_spec: dict[str, object] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "5Gi"}},
    }
    if storage is not None:
        claim_spec["storageClassName"] = storage
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "ns"},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"schedulerName": "vaclab-scheduler", "containers": [{}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim_spec}],
        },
    }


def test_what_if_gives_each_replica_its_claim_and_each_claim_a_disk_of_its_own() -> None:
    """Three disks, on two nodes: the fourth replica finds none, as the scheduler will say.
    A claim naming no class gets the default class, as the apiserver gives it."""
    default_class = storage_class()
    default_class["metadata"]["annotations"] = {
        "storageclass.kubernetes.io/is-default-class": "true"
    }
    lists = ClusterLists(
        nodes=[node("n1"), node("n2"), node("n3")],
        bandwidths=[bandwidth("n1"), bandwidth("n2"), bandwidth("n3")],
        volumes={
            STORAGECLASSES: [default_class],
            PERSISTENTVOLUMES: [pv("a", node="n1"), pv("b", node="n2"), pv("c", node="n2")],
        },
    )
    workload = read_workload(
        _statefulset_with_disks(4, None), default_namespace="ns", replicas=None
    )
    result = simulate(build_snapshot(lists, CONFIG), workload)
    placed = {p.pod: p.node for p in result.placements}
    assert sorted(n for n in placed.values() if n) == ["n1", "n2", "n2"]
    [waiting] = [p for p in result.placements if p.node is None]
    assert waiting.message == (
        "0/3 nodes are available: 3 node(s) didn't find available persistent volumes to bind."
    )
