"""Per-node CSI volume limits and ReadWriteOncePod claims, counted with the pods still being
bound: a burst of pods never goes past a limit or shares a ReadWriteOncePod claim."""

from __future__ import annotations

from typing import Any

from kubeio.resources import PODS
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from tests.integration.scheduler.conftest import create_pod, wait_until
from tests.integration.scheduler.volumes.storage import Storage
from tests.integration.scheduler.volumes.support import (
    node_of,
    unschedulable_message,
    volume_pod,
)

DRIVER = "csi.vaclab.test"
RWOP_CONFLICT = (
    "node(s) unavailable due to PersistentVolumeClaim with ReadWriteOncePod access mode "
    "already in-use by another pod"
)


def test_csinode_limits_hold_for_pods_bound_and_in_flight(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    storage: Storage,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(2)
    for node in nodes:
        storage.csinode(node, {DRIVER: 1})
    csi = storage.storage_class("csi", provisioner=DRIVER)
    external = storage.provisioner(csi, DRIVER)
    external.start()
    run_scheduler()
    for index in range(3):
        storage.claim(f"data-{index}", csi)
    for index in range(3):  # at once: the second is decided while the first is in flight
        create_pod(kube, namespace, volume_pod(f"p{index}", scheduler_name, (f"data-{index}",)))

    def placed() -> dict[str, str]:
        return {f"p{i}": n for i in range(3) if (n := node_of(kube, namespace, f"p{i}"))}

    wait_until(lambda: len(placed()) == 2, timeout=90, what="two pods bound")
    assert sorted(placed().values()) == sorted(nodes)
    [waiting] = {"p0", "p1", "p2"} - set(placed())
    message = wait_until(lambda: unschedulable_message(kube, namespace, waiting))
    assert message == "0/2 nodes are available: 2 node(s) exceed max volume count."
    assert (
        not storage.get_claim(f"data-{waiting[1:]}")["metadata"]
        .get("annotations", {})
        .get("volume.kubernetes.io/selected-node")
    )


def test_a_read_write_once_pod_claim_serves_one_pod_at_a_time(
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
    storage.volume("solo", local, node=nodes[0], modes=("ReadWriteOncePod",))
    storage.claim("solo", local, modes=("ReadWriteOncePod",))
    run_scheduler()
    for name in ("a", "b"):
        create_pod(kube, namespace, volume_pod(name, scheduler_name, ("solo",)))

    def bound() -> dict[str, str]:
        return {n: node for n in ("a", "b") if (node := node_of(kube, namespace, n))}

    wait_until(bound, timeout=60, what="one pod bound")
    [(holder, node)] = bound().items()
    assert node == nodes[0]
    other = "b" if holder == "a" else "a"
    message = wait_until(lambda: unschedulable_message(kube, namespace, other))
    assert message == f"0/3 nodes are available: 3 {RWOP_CONFLICT}."
    # No kubelet: the holder goes away only when forced.
    kube.request(
        "DELETE", PODS.path(namespace=namespace, name=holder), query={"gracePeriodSeconds": 0}
    )
    assert wait_until(lambda: node_of(kube, namespace, other), timeout=60) == nodes[0]
