"""The synthetic cluster and workload of the benchmarks, as plain API objects (fixed seed)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import new_bandwidth_object

JSON = dict[str, Any]

NIC_CHOICES_MBPS = (1000, 2500, 10000)
VSWITCH_MBPS = 20000
REQUEST_CHOICES = ("10M", "25M", "50M", "100M", "200M")


@dataclass(frozen=True, slots=True)
class Preset:
    nodes: int
    pods: int


PRESETS = {
    "smoke": Preset(nodes=10, pods=50),
    "small": Preset(nodes=100, pods=1000),
    "medium": Preset(nodes=1000, pods=5000),
    "large": Preset(nodes=5000, pods=10000),
}


def node_object(name: str, zone: str) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone},
        },
        "spec": {},
        "status": {
            "allocatable": {
                "cpu": "64",
                "memory": "256Gi",
                "pods": "110",
                "ephemeral-storage": "1Ti",
            },
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def capacity_with_nic(nic_mbps: int) -> Usage:
    """A bench node's four axes: its NIC each way, and the same virtual switch on every node."""
    return Usage(
        local=LinkBudget(VSWITCH_MBPS, VSWITCH_MBPS), network=LinkBudget(nic_mbps, nic_mbps)
    )


def node_capacity(index: int, seed: int = 7) -> Usage:
    return capacity_with_nic(random.Random(seed * 100_003 + index).choice(NIC_CHOICES_MBPS))


def ledger_object(name: str, capacity: Usage) -> JSON:
    return new_bandwidth_object(name, capacity)


@dataclass(frozen=True, slots=True)
class PodSpec:
    """One pod of the workload: its group (a workload name, or "" for a bare pod) and request."""

    name: str
    group: str
    group_kind: str
    group_size: int
    egress: str
    ingress: str
    link_local: bool = False


def workload(pods: int, seed: int = 7) -> list[PodSpec]:
    """StatefulSets and Deployments of 5 to 50 replicas plus 10% bare pods, mixed requests."""
    rng = random.Random(seed)
    specs: list[PodSpec] = []
    bare = pods // 10
    group_index = 0
    while len(specs) < pods - bare:
        size = min(rng.randint(5, 50), pods - bare - len(specs))
        kind = "StatefulSet" if group_index % 2 == 0 else "Deployment"
        name = f"{kind.lower()}-{group_index:04d}"
        egress, ingress = rng.choice(REQUEST_CHOICES), rng.choice(REQUEST_CHOICES)
        specs += [PodSpec(f"{name}-{i}", name, kind, size, egress, ingress) for i in range(size)]
        group_index += 1
    specs += [
        PodSpec(
            f"bare-{i:05d}", "", "", 1, rng.choice(REQUEST_CHOICES), rng.choice(REQUEST_CHOICES)
        )
        for i in range(pods - len(specs))
    ]
    return specs


def pod_object(
    spec: PodSpec,
    *,
    scheduler_name: str,
    namespace: str,
    as_extended_resources: bool = False,
    annotate: bool = True,
    uid: str = "",
    node_name: str = "",
) -> JSON:
    """The pod as our scheduler sees it (annotations) or as kube-scheduler would need it
    (the same Mbps as extended resources, the way bandwidth is modelled without us).
    ``annotate=False`` leaves the bandwidth out (a contender that asks for it another way)."""
    metadata: JSON = {"name": spec.name, "namespace": namespace, "labels": {"bench": "1"}}
    if uid:
        metadata["uid"] = uid
        metadata["creationTimestamp"] = "2026-01-01T00:00:00Z"
    if spec.group:
        metadata["labels"]["app"] = spec.group
    requests: JSON = {"cpu": "10m", "memory": "16Mi"}
    if as_extended_resources:
        requests[EGRESS_RESOURCE] = str(_mbps(spec.egress))
        requests[INGRESS_RESOURCE] = str(_mbps(spec.ingress))
    elif annotate:
        metadata["annotations"] = {
            "kubernetes.io/egress-bandwidth": spec.egress,
            "kubernetes.io/ingress-bandwidth": spec.ingress,
        }
        if spec.link_local:
            metadata["annotations"]["bandwidth.vaclab.org/link-local"] = "true"
    body: JSON = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "schedulerName": scheduler_name,
            "containers": [
                {
                    "name": "app",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {
                        "requests": requests,
                        "limits": dict(requests) if as_extended_resources else {},
                    },
                }
            ],
        },
    }
    if node_name:
        body["spec"]["nodeName"] = node_name
    return body


EGRESS_RESOURCE = "vaclab.org/network-egress-mbps"
INGRESS_RESOURCE = "vaclab.org/network-ingress-mbps"


def _mbps(quantity: str) -> int:
    from bandwidth.quantity import parse_mbps

    return parse_mbps(quantity)
