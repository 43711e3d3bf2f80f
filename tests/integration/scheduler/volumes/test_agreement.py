"""Volume cases where kube-scheduler defines the result: each is built twice, once for our
scheduler and once for kube-scheduler v1.37 running beside it (pods naming
``default-scheduler``), each copy with its own classes, volumes and claims; both must agree.

Agreement: both place the pod, on the same node when only one node can take it (else on
nodes of the same allowed set), or both leave it pending with the same message (kube-
scheduler's preemption postscript aside). A disagreement names the case and both outcomes.

These cases are small on purpose; they could join the general conformance harness of
``tests/conformance`` as a volume generator: each case is a function from (storage, nodes,
tag, scheduler name) to the pod to place and the nodes allowed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubeio.rest import KubeApi
from localcluster import ControlPlane
from tests.integration.scheduler.conftest import create_pod, wait_until
from tests.integration.scheduler.volumes.storage import Storage
from tests.integration.scheduler.volumes.support import (
    node_of,
    unschedulable_message,
    volume_pod,
)

JSON = dict[str, Any]
KUBE = "default-scheduler"


@dataclass(frozen=True)
class Outcome:
    node: str | None
    message: str = ""


@dataclass(frozen=True)
class Case:
    """``build(storage, nodes, tag, scheduler)`` creates what the case needs, named with
    ``tag``, and returns the pod to schedule."""

    name: str
    build: Callable[[Storage, list[str], str, str], JSON]
    any_node: bool = False
    """More than one node may take the pod: agreeing is placing it at all."""


def _local_volume_on_one_node(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    local = storage.storage_class(f"local-{tag}")
    storage.volume(f"small-{tag}", local, node=nodes[0], size="1Gi")
    storage.volume(f"fits-{tag}", local, node=nodes[1], size="5Gi")
    storage.claim(f"data-{tag}", local, size="2Gi")
    return volume_pod(f"local-{tag}", sched, (f"data-{tag}",))


def _no_volume_fits(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    local = storage.storage_class(f"tiny-{tag}")
    for index, node in enumerate(nodes):
        storage.volume(f"tiny-{index}-{tag}", local, node=node, size="1Gi")
    storage.claim(f"big-{tag}", local, size="2Gi")
    return volume_pod(f"nofit-{tag}", sched, (f"big-{tag}",))


def _bound_volume(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    fast = storage.storage_class(f"fast-{tag}", mode="Immediate")
    storage.volume(f"bound-{tag}", fast, node=nodes[2])
    storage.claim(f"bound-{tag}", fast)
    wait_until(lambda: storage.get_claim(f"bound-{tag}")["status"].get("phase") == "Bound")
    return volume_pod(f"bound-{tag}", sched, (f"bound-{tag}",))


def _immediate_unbound(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    fast = storage.storage_class(f"slow-{tag}", mode="Immediate")
    storage.claim(f"unbound-{tag}", fast)
    return volume_pod(f"immediate-{tag}", sched, (f"unbound-{tag}",))


def _missing_claim(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    return volume_pod(f"missing-{tag}", sched, (f"nowhere-{tag}",))


def _read_write_once_pod(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    local = storage.storage_class(f"rwop-{tag}")
    storage.volume(f"rwop-{tag}", local, node=nodes[0], modes=("ReadWriteOncePod",))
    storage.claim(f"rwop-{tag}", local, modes=("ReadWriteOncePod",))
    holder = volume_pod(f"holder-rwop-{tag}", sched, (f"rwop-{tag}",))
    holder["spec"]["nodeName"] = nodes[0]
    create_pod(storage.kube, storage.namespace, holder)
    return volume_pod(f"rwop-{tag}", sched, (f"rwop-{tag}",))


def _csinode_limit(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    driver = f"{tag}.csi.vaclab.test"
    fast = storage.storage_class(f"attach-{tag}", mode="Immediate", provisioner=driver)
    for name in ("a", "b", "c"):
        storage.volume(f"attach-{name}-{tag}", fast, csi=(driver, f"{name}-{tag}"))
        storage.claim(f"attach-{name}-{tag}", fast)
    for name in ("a", "b", "c"):
        wait_until(
            lambda n=name: storage.get_claim(f"attach-{n}-{tag}")["status"].get("phase") == "Bound"
        )
    for node, name in zip(nodes, ("a", "b", "a"), strict=True):
        holder = volume_pod(f"holder-{node[-2:]}-{tag}", sched, (f"attach-{name}-{tag}",))
        holder["spec"]["nodeName"] = node
        create_pod(storage.kube, storage.namespace, holder)
    return volume_pod(f"attach-{tag}", sched, (f"attach-c-{tag}",))


def _volume_zone(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    fast = storage.storage_class(
        f"zonal-{tag}", mode="Immediate", provisioner="zonal.csi.vaclab.test"
    )
    zone_b = {"topology.kubernetes.io/zone": "zone-b"}
    storage.volume(
        f"zonal-{tag}", fast, csi=("zonal.csi.vaclab.test", f"zonal-{tag}"), labels=zone_b
    )
    storage.claim(f"zonal-{tag}", fast)
    wait_until(lambda: storage.get_claim(f"zonal-{tag}")["status"].get("phase") == "Bound")
    return volume_pod(f"zonal-{tag}", sched, (f"zonal-{tag}",))


def _affinity_nowhere(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    fast = storage.storage_class(f"elsewhere-{tag}", mode="Immediate")
    storage.volume(f"elsewhere-{tag}", fast, node=f"gone-{tag}")
    storage.claim(f"elsewhere-{tag}", fast)
    wait_until(lambda: storage.get_claim(f"elsewhere-{tag}")["status"].get("phase") == "Bound")
    return volume_pod(f"elsewhere-{tag}", sched, (f"elsewhere-{tag}",))


def _zone_nowhere(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    fast = storage.storage_class(f"zone-z-{tag}", mode="Immediate", provisioner="z.csi.test")
    zone_z = {"topology.kubernetes.io/zone": "zone-z"}
    storage.volume(f"zone-z-{tag}", fast, csi=("z.csi.test", f"z-{tag}"), labels=zone_z)
    storage.claim(f"zone-z-{tag}", fast)
    wait_until(lambda: storage.get_claim(f"zone-z-{tag}")["status"].get("phase") == "Bound")
    return volume_pod(f"zone-z-{tag}", sched, (f"zone-z-{tag}",))


def _match_fields(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    """A volume whose node affinity names a node by ``metadata.name``: kube-scheduler
    matches a volume's affinity on node labels only, so every node fits it."""
    local = storage.storage_class(f"fields-{tag}")
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [nodes[0]]}]}
    affinity = {"required": {"nodeSelectorTerms": [by_name]}}
    storage.volume(f"fields-{tag}", local, node=nodes[0], affinity=affinity)
    storage.claim(f"fields-{tag}", local)
    return volume_pod(f"fields-{tag}", sched, (f"fields-{tag}",))


def _bound_match_fields(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    fast = storage.storage_class(f"bound-fields-{tag}", mode="Immediate")
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [nodes[2]]}]}
    affinity = {"required": {"nodeSelectorTerms": [by_name]}}
    storage.volume(f"bound-fields-{tag}", fast, node=nodes[2], affinity=affinity)
    storage.claim(f"bound-fields-{tag}", fast)
    wait_until(lambda: storage.get_claim(f"bound-fields-{tag}")["status"].get("phase") == "Bound")
    return volume_pod(f"bound-fields-{tag}", sched, (f"bound-fields-{tag}",))


def _prebound(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    local = storage.storage_class(f"pre-{tag}")
    storage.volume(f"any-{tag}", local, node=nodes[0], size="1Gi")
    claim = {"namespace": storage.namespace, "name": f"pre-{tag}"}
    storage.volume(f"pre-{tag}", local, node=nodes[2], size="50Gi", claim=claim)
    storage.claim(f"pre-{tag}", local)
    return volume_pod(f"pre-{tag}", sched, (f"pre-{tag}",))


def _ephemeral(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    local = storage.storage_class(f"scratch-{tag}")
    storage.volume(f"scratch-{tag}", local, node=nodes[1])
    return volume_pod(f"scratch-{tag}", sched, (), ephemeral={"scratch": local})


def _not_enough_storage(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    driver = f"capacity-{tag}.csi.vaclab.test"
    storage.csidriver(driver, storage_capacity=True)
    csi = storage.storage_class(f"capacity-{tag}", provisioner=driver)
    for node in nodes:
        storage.capacity(f"capacity-{tag}-{node[-2:]}", csi, node, "1Gi")
    storage.claim(f"capacity-{tag}", csi, size="2Gi")
    return volume_pod(f"capacity-{tag}", sched, (f"capacity-{tag}",))


def _topology_excludes(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    nowhere = [{"matchLabelExpressions": [{"key": "kubernetes.io/hostname", "values": ["x"]}]}]
    csi = storage.storage_class(f"topo-{tag}", provisioner="t.csi.test", topologies=nowhere)
    storage.claim(f"topo-{tag}", csi)
    return volume_pod(f"topo-{tag}", sched, (f"topo-{tag}",))


def _node_allocatable_limit(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    """An attach limit in the node's allocatable (``attachable-volumes-csi-<driver>``), the
    pre-CSINode way, with no CSINode for the driver."""
    driver = f"alloc-{tag}.csi.vaclab.test"
    for node in nodes:
        storage.kube.patch(
            f"/api/v1/nodes/{node}/status",
            {"status": {"allocatable": {f"attachable-volumes-csi-{driver}": "0"}}},
        )
    fast = storage.storage_class(f"alloc-{tag}", mode="Immediate", provisioner=driver)
    storage.volume(f"alloc-{tag}", fast, csi=(driver, f"alloc-{tag}"))
    storage.claim(f"alloc-{tag}", fast)
    wait_until(lambda: storage.get_claim(f"alloc-{tag}")["status"].get("phase") == "Bound")
    return volume_pod(f"alloc-{tag}", sched, (f"alloc-{tag}",))


def _provisioned_where_allowed(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    driver = f"dynamic-{tag}.csi.vaclab.test"
    only = [{"matchLabelExpressions": [{"key": "kubernetes.io/hostname", "values": [nodes[2]]}]}]
    csi = storage.storage_class(f"dynamic-{tag}", provisioner=driver, topologies=only)
    storage.provisioner(csi, driver).start()
    storage.claim(f"dynamic-{tag}", csi)
    return volume_pod(f"dynamic-{tag}", sched, (f"dynamic-{tag}",))


def _two_claims(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    local = storage.storage_class(f"pair-{tag}")
    storage.volume(f"pair-0-{tag}", local, node=nodes[0])
    storage.volume(f"pair-1a-{tag}", local, node=nodes[1])
    storage.volume(f"pair-1b-{tag}", local, node=nodes[1])
    storage.claim(f"pair-a-{tag}", local)
    storage.claim(f"pair-b-{tag}", local)
    return volume_pod(f"pair-{tag}", sched, (f"pair-a-{tag}", f"pair-b-{tag}"))


def _selector(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    local = storage.storage_class(f"picky-{tag}")
    storage.volume(f"hdd-{tag}", local, node=nodes[0], size="2Gi", labels={"disk": "hdd"})
    storage.volume(f"ssd-{tag}", local, node=nodes[2], size="9Gi", labels={"disk": "ssd"})
    claim = storage.claim_body(f"picky-{tag}", local)
    claim["spec"]["selector"] = {"matchLabels": {"disk": "ssd"}}
    storage.create_claim(claim)
    return volume_pod(f"picky-{tag}", sched, (f"picky-{tag}",))


def _access_modes(storage: Storage, nodes: list[str], tag: str, sched: str) -> JSON:
    local = storage.storage_class(f"modes-{tag}")
    storage.volume(f"rwo-{tag}", local, node=nodes[0])
    storage.volume(f"rwx-{tag}", local, node=nodes[1], modes=("ReadWriteMany", "ReadWriteOnce"))
    storage.claim(f"modes-{tag}", local, modes=("ReadWriteMany",))
    return volume_pod(f"modes-{tag}", sched, (f"modes-{tag}",))


CASES = (
    Case("a local volume on one node only", _local_volume_on_one_node),
    Case("no volume big enough", _no_volume_fits),
    Case("a bound volume's node affinity", _bound_volume),
    Case("an Immediate claim not bound", _immediate_unbound),
    Case("a claim that does not exist", _missing_claim),
    Case("a ReadWriteOncePod claim in use", _read_write_once_pod),
    Case("a CSINode attach limit", _csinode_limit),
    Case("a volume's zone", _volume_zone),
    Case("a bound volume no node can use", _affinity_nowhere),
    Case("a volume in a zone with no node", _zone_nowhere),
    Case("a volume's node affinity by metadata.name", _match_fields, any_node=True),
    Case("a bound volume's node affinity by metadata.name", _bound_match_fields, any_node=True),
    Case("a volume pre-bound to the claim", _prebound),
    Case("a generic ephemeral volume", _ephemeral),
    Case("CSIStorageCapacity too small everywhere", _not_enough_storage),
    Case("allowedTopologies matching no node", _topology_excludes),
    Case("an attach limit in node allocatable", _node_allocatable_limit, any_node=True),
    Case("dynamic provisioning where the class allows one node", _provisioned_where_allowed),
    Case("two claims, and two volumes on one node only", _two_claims),
    Case("a claim's selector", _selector),
    Case("a claim's access modes", _access_modes),
)


def _outcome(kube: KubeApi, namespace: str, pod: str) -> Outcome | None:
    node = node_of(kube, namespace, pod)
    if node:
        return Outcome(node)
    message = unschedulable_message(kube, namespace, pod)
    return Outcome(None, message) if message else None


def _comparable(outcome: Outcome | None, case: Case, tag: str) -> Outcome | None:
    """Object names carry the copy's tag; a pod any node may take compares as placed."""
    if outcome is None:
        return None
    if outcome.node is not None and case.any_node:
        return Outcome("any node")
    return Outcome(outcome.node, outcome.message.replace(tag, "<tag>"))


def test_volume_cases_agree_with_kube_scheduler(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    kube_scheduler: ControlPlane,
    simulated_nodes: Any,
    storage: Storage,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(3)  # zones a, b, c
    for node in nodes:
        storage.csinode(node, {"ours.csi.vaclab.test": 1, "kube.csi.vaclab.test": 1})
    run_scheduler()
    disagreements = []
    for case in CASES:
        pods = {}
        for tag, scheduler in (("ours", scheduler_name), ("kube", KUBE)):
            body = case.build(storage, nodes, tag, scheduler)
            create_pod(kube, namespace, body)
            pods[tag] = body["metadata"]["name"]
        wait_until(
            lambda p=pods: all(_outcome(kube, namespace, name) for name in p.values()),
            timeout=90,
            what=f"both outcomes of {case.name!r}",
        )
        time.sleep(3)  # a first reason may predate a watch event; let both settle
        ours, theirs = (
            _comparable(_outcome(kube, namespace, pods[tag]), case, tag) for tag in ("ours", "kube")
        )
        print(f"{case.name}: ours {ours}, kube-scheduler {theirs}")
        if ours != theirs:
            disagreements.append(f"{case.name}: ours {ours}, kube-scheduler {theirs}")
    assert not disagreements, "\n".join(disagreements)
