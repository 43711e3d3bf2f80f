"""WaitForFirstConsumer claims on local volumes, bound by the real PV controller: the scheduler
picks the node that holds a fitting volume, names the volume in its claimRef, waits for the
binding, then binds the pod with its bandwidth."""

from __future__ import annotations

from collections import Counter
from typing import Any

from kubeio.resources import PODS, STATEFULSETS
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from tests.integration.scheduler.conftest import create_pod, ledger, pods_in, wait_until
from tests.integration.scheduler.volumes.storage import Storage
from tests.integration.scheduler.volumes.support import (
    node_of,
    unschedulable_message,
    volume_pod,
    warnings_for,
)

BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"


def _reserved_uids(kube: KubeApi, node: str) -> set[str]:
    return {entry["podUID"] for entry in ledger(kube, node)["spec"].get("reservations") or []}


def test_statefulset_claims_land_on_the_nodes_holding_volumes_with_their_bandwidth(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    ledgers: Any,
    storage: Storage,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(4)
    ledgers(nodes[:3], network=(1000, 1000))
    ledgers(nodes[3:], network=(50, 50))  # a volume, but no room for 100 Mbps
    local = storage.storage_class()
    volumes = {
        storage.volume(f"disk-{index}", local, node=node): node for index, node in enumerate(nodes)
    }
    run_scheduler()
    kube.create(
        STATEFULSETS.path(namespace=namespace),
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 4,
                "podManagementPolicy": "Parallel",
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {
                        "labels": {"app": "db"},
                        "annotations": {
                            "kubernetes.io/egress-bandwidth": "100M",
                            "kubernetes.io/ingress-bandwidth": "100M",
                        },
                    },
                    "spec": {
                        "schedulerName": scheduler_name,
                        "containers": [
                            {
                                "name": "db",
                                "image": "registry.k8s.io/pause:3.10",
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            }
                        ],
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "storageClassName": local,
                            "resources": {"requests": {"storage": "1Gi"}},
                        },
                    }
                ],
            },
        },
    )

    def placed() -> dict[str, str]:
        return {
            p["metadata"]["name"]: p["spec"]["nodeName"]
            for p in pods_in(kube, namespace)
            if p["spec"].get("nodeName")
        }

    wait_until(lambda: len(placed()) >= 3, timeout=120, what="three replicas bound")
    placement = placed()
    assert Counter(placement.values()) == Counter(nodes[:3]), placement
    for pod_name, node in placement.items():
        claim = storage.get_claim(f"data-{pod_name}")
        volume = claim["spec"]["volumeName"]
        assert volumes[volume] == node, (pod_name, volume)
        assert "pv.kubernetes.io/bind-completed" in claim["metadata"]["annotations"]
        # The PV controller writes the phase after the binding the scheduler waits for.
        wait_until(
            lambda c=claim: storage.get_claim(c["metadata"]["name"])["status"]["phase"] == "Bound"
        )
        assert storage.get_volume(volume)["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
        pod = kube.get(PODS.path(namespace=namespace, name=pod_name))
        assert pod["metadata"]["uid"] in _reserved_uids(kube, node)
    [waiting] = {f"db-{i}" for i in range(4)} - set(placement)
    message = wait_until(
        lambda: unschedulable_message(kube, namespace, waiting), what="the fourth replica's reason"
    )
    assert "1 insufficient network uplink bandwidth (need 100 Mbps)" in message, message
    assert f"3 {BIND_CONFLICT}" in message, message
    assert not storage.get_claim(f"data-{waiting}")["spec"].get("volumeName")


def test_two_pods_racing_for_one_volume_never_share_it(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    storage: Storage,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(3)
    local = storage.storage_class()
    only = storage.volume("only", local, node=nodes[1])
    for name in ("a", "b"):
        storage.claim(f"claim-{name}", local)
    run_scheduler()
    for name in ("a", "b"):
        create_pod(kube, namespace, volume_pod(f"pod-{name}", scheduler_name, (f"claim-{name}",)))

    def bound() -> dict[str, str]:
        return {n: node for n in ("a", "b") if (node := node_of(kube, namespace, f"pod-{n}"))}

    wait_until(bound, timeout=60, what="one pod bound")
    [(winner, node)] = bound().items()
    assert node == nodes[1]
    loser = "b" if winner == "a" else "a"
    ref = storage.get_volume(only)["spec"]["claimRef"]
    assert ref["name"] == f"claim-{winner}"
    message = wait_until(
        lambda: unschedulable_message(kube, namespace, f"pod-{loser}"), what="the loser's reason"
    )
    assert message == f"0/3 nodes are available: 3 {BIND_CONFLICT}."
    assert not storage.get_claim(f"claim-{loser}")["spec"].get("volumeName")
    # A new volume is a cluster change: the loser is tried again and takes it.
    storage.volume("second", local, node=nodes[2])
    assert wait_until(lambda: node_of(kube, namespace, f"pod-{loser}"), timeout=60) == nodes[2]
    assert len(bound()) == 2


def test_the_pod_is_bound_only_once_the_pv_controller_bound_its_claim(
    kube: KubeApi,
    namespace: str,
    controlplane: ControlPlane,
    simulated_nodes: Any,
    ledgers: Any,
    storage: Storage,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    """The controller-manager stopped once the volume is Available: the claimRef is written,
    the binding never completes, the pod is not bound, the wait times out with a Warning and
    the bandwidth is released. With the PV controller back, the claim binds to that volume and
    the pod follows it."""
    nodes = simulated_nodes(3)
    ledgers(nodes)
    local = storage.storage_class()
    storage.claim("data", local)
    controlplane.start_controller_manager()
    disk = storage.volume("disk", local, node=nodes[2])
    wait_until(
        lambda: storage.get_volume(disk).get("status", {}).get("phase") == "Available",
        what="the PV controller to make the volume Available",
    )
    controlplane.stop_component("kube-controller-manager")
    run_scheduler(volume_bind_timeout_seconds=3.0)
    pod = create_pod(kube, namespace, volume_pod("p", scheduler_name, ("data",), egress="100M"))
    uid = pod["metadata"]["uid"]

    warning = wait_until(
        lambda: warnings_for(kube, namespace, "p", "FailedScheduling"),
        timeout=60,
        what="the timeout's Warning",
    )[0]
    assert warning == (
        f"binding volumes: timed out after 3s waiting for persistentvolumeclaim {namespace}/data "
        f"to be bound to persistentvolume {disk} by the PV controller "
        "(is kube-controller-manager running?)"
    )
    assert node_of(kube, namespace, "p") is None
    assert storage.get_volume(disk)["spec"]["claimRef"]["name"] == "data"  # not rolled back
    wait_until(lambda: uid not in _reserved_uids(kube, nodes[2]), what="bandwidth released")

    controlplane.start_controller_manager()
    try:
        assert wait_until(lambda: node_of(kube, namespace, "p"), timeout=90) == nodes[2]
        assert storage.get_claim("data")["spec"]["volumeName"] == disk
        assert uid in _reserved_uids(kube, nodes[2])
    finally:
        controlplane.stop_component("kube-controller-manager")
