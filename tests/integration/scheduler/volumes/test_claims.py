"""Claims the PV controller binds (Immediate classes, volumes bound beforehand) and claims an
external provisioner fills: the pod waits with kube-scheduler's reason, then follows its
volume; bandwidth is still required on top."""

from __future__ import annotations

from typing import Any

from kubeio.resources import BANDWIDTHS
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from tests.integration.scheduler.conftest import create_pod, ledger, wait_until
from tests.integration.scheduler.volumes.storage import SELECTED_NODE, Storage
from tests.integration.scheduler.volumes.support import (
    node_of,
    unschedulable_message,
    volume_pod,
    warnings_for,
)

DRIVER = "csi.vaclab.test"


def _reason(kube: KubeApi, namespace: str, pod: str) -> str:
    return str(wait_until(lambda: unschedulable_message(kube, namespace, pod), what="a reason"))


def test_an_immediate_claim_waits_until_the_pv_controller_binds_it(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    storage: Storage,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(3)
    fast = storage.storage_class("fast", mode="Immediate")
    storage.claim("data", fast)
    run_scheduler()
    create_pod(kube, namespace, volume_pod("p", scheduler_name, ("data",)))
    assert _reason(kube, namespace, "p") == (
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    )
    disk = storage.volume("disk", fast, node=nodes[1])
    assert wait_until(lambda: node_of(kube, namespace, "p"), timeout=90) == nodes[1]
    assert storage.get_claim("data")["spec"]["volumeName"] == disk


def test_a_missing_claim_keeps_the_pod_waiting_until_it_is_created(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    storage: Storage,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(2)
    local = storage.storage_class()
    storage.volume("disk", local, node=nodes[0])
    run_scheduler()
    create_pod(kube, namespace, volume_pod("p", scheduler_name, ("later",)))
    assert _reason(kube, namespace, "p") == (
        '0/2 nodes are available: persistentvolumeclaim "later" not found.'
    )
    storage.claim("later", local)
    assert wait_until(lambda: node_of(kube, namespace, "p"), timeout=90) == nodes[0]


def test_a_bound_volume_keeps_the_pod_on_its_node_and_bandwidth_still_counts(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    ledgers: Any,
    storage: Storage,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(5)
    ledgers([n for n in nodes if n != nodes[3]])
    ledgers([nodes[3]], network=(50, 50))
    fast = storage.storage_class("fast", mode="Immediate")
    disk = storage.volume("disk", fast, node=nodes[3])
    storage.claim("data", fast)
    wait_until(lambda: storage.get_claim("data")["status"].get("phase") == "Bound", timeout=60)
    run_scheduler()
    create_pod(kube, namespace, volume_pod("p", scheduler_name, ("data",), egress="100M"))
    assert _reason(kube, namespace, "p") == (
        "0/5 nodes are available: 4 node(s) didn't match PersistentVolume's node affinity, "
        "1 insufficient network downlink bandwidth (need 100 Mbps), "
        "1 insufficient network uplink bandwidth (need 100 Mbps)."
    )
    kube.patch(
        BANDWIDTHS.path(name=nodes[3]),
        {"spec": {"capacity": {"network": {"ulMbps": 1000, "dlMbps": 1000}}}},
    )
    assert wait_until(lambda: node_of(kube, namespace, "p"), timeout=60) == nodes[3]
    assert storage.get_claim("data")["spec"]["volumeName"] == disk
    [entry] = ledger(kube, nodes[3])["spec"]["reservations"]
    assert entry["bandwidth"] == {"ulMbps": 100, "dlMbps": 100}


def test_dynamic_provisioning_selects_a_node_then_binds_the_provisioned_volume(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    storage: Storage,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(4)
    allowed = nodes[2:]
    topology = [{"matchLabelExpressions": [{"key": "kubernetes.io/hostname", "values": allowed}]}]
    csi = storage.storage_class("csi", provisioner=DRIVER, topologies=topology)
    storage.claim("data", csi)
    external = storage.provisioner(csi, DRIVER)
    external.start()
    run_scheduler()
    create_pod(kube, namespace, volume_pod("p", scheduler_name, ("data",)))
    node = wait_until(lambda: node_of(kube, namespace, "p"), timeout=90)
    assert node in allowed
    claim = storage.get_claim("data")
    assert claim["metadata"]["annotations"][SELECTED_NODE] == node
    assert "pv.kubernetes.io/bind-completed" in claim["metadata"]["annotations"]
    wait_until(lambda: storage.get_claim("data")["status"]["phase"] == "Bound")
    assert external.provisioned == {"data": node}


def test_a_provisioner_too_slow_gives_a_warning_and_the_pod_retries_on_the_selected_node(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    ledgers: Any,
    storage: Storage,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(3)
    ledgers(nodes)
    csi = storage.storage_class("csi", provisioner=DRIVER)
    storage.claim("data", csi)
    run_scheduler(volume_bind_timeout_seconds=3.0)
    pod = create_pod(kube, namespace, volume_pod("p", scheduler_name, ("data",), egress="10M"))
    warning = wait_until(
        lambda: warnings_for(kube, namespace, "p", "FailedScheduling"),
        timeout=60,
        what="the timeout's Warning",
    )[0]
    selected = storage.get_claim("data")["metadata"]["annotations"][SELECTED_NODE]
    assert warning == (
        f"binding volumes: timed out after 3s waiting for persistentvolumeclaim {namespace}/data "
        f'to be provisioned on node {selected} (is the provisioner "{DRIVER}" running?)'
    )
    assert node_of(kube, namespace, "p") is None
    uid = pod["metadata"]["uid"]
    wait_until(
        lambda: all(
            uid not in {e["podUID"] for e in ledger(kube, n)["spec"].get("reservations") or []}
            for n in nodes
        ),
        what="the reservation released",
    )
    external = storage.provisioner(csi, DRIVER)
    external.start()
    assert wait_until(lambda: node_of(kube, namespace, "p"), timeout=90) == selected
    assert external.provisioned == {"data": selected}


def test_a_provisioner_that_gives_up_on_a_node_sends_the_pod_back_to_be_scheduled(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    storage: Storage,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    """The provisioner removes ``selected-node`` (as one out of room does): the wait ends at
    once with kube-scheduler's reason, and the pod is decided again, without the annotation."""
    simulated_nodes(3)
    csi = storage.storage_class("csi", provisioner=DRIVER)
    storage.claim("data", csi)
    external = storage.provisioner(csi, DRIVER, refuse=1)
    external.start()
    run_scheduler()
    create_pod(kube, namespace, volume_pod("p", scheduler_name, ("data",)))
    warning = wait_until(
        lambda: warnings_for(kube, namespace, "p", "FailedScheduling"), timeout=60
    )[0]
    assert warning == 'binding volumes: provisioning failed for PVC "data"'
    node = wait_until(lambda: node_of(kube, namespace, "p"), timeout=90)
    assert external.provisioned == {"data": node}
    assert len(external.refused) == 1
