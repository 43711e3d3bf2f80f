"""A simulated DRA driver for bandwidth: what kube-scheduler needs to place pods with DRA
consumable capacity (KEP-5075) on simulated nodes.

- one DeviceClass, :data:`DEVICE_CLASS`, selecting the devices of :data:`DRIVER`;
- per node, a ResourceSlice (its own pool, named after the node) with two devices:
  :data:`NIC` (the network datapath) and :data:`VSWITCH` (the local datapath), each
  ``allowMultipleAllocations: true`` with an ``uplink`` and a ``downlink`` capacity in bits per
  second and a ``datapath`` attribute that requests select on;
- per workload, a ResourceClaimTemplate asking the NIC and the virtual switch for the pod's
  uplink and downlink (the virtual switch only for a link-local workload), so kube-scheduler
  enforces the same four axes as our scheduler.

Kubernetes v1.37 serves ``resource.k8s.io/v1`` and has ``DRAConsumableCapacity`` (beta) on by
default in kube-apiserver, kube-scheduler and kube-controller-manager: no flag is needed. The
claims are made from the templates by kube-controller-manager's ``resourceclaim-controller``.

What a real cluster needs on top: the driver's kubelet plugin on every node, which publishes
these slices and prepares the allocated devices for the pod's containers; without it a pod with
a claim is scheduled but never starts. Simulated nodes have no kubelet, so only scheduling is
exercised here.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes.client import ApiClient

from bandwidth.budget import LinkBudget, Usage
from bandwidth.dra import DraSharing
from localcluster import rawapi

JSON = dict[str, Any]

API = "/apis/resource.k8s.io/v1"
DRIVER = "bandwidth.dra.vaclab.org"
DEVICE_CLASS = "vaclab-bandwidth"
NIC = "nic"
VSWITCH = "vswitch"
UPLINK = "uplink"
DOWNLINK = "downlink"
DATAPATH_ATTRIBUTE = "datapath"
SHARING = DraSharing(
    driver=DRIVER,
    nic_device=NIC,
    vswitch_device=VSWITCH,
    uplink_capacity=UPLINK,
    downlink_capacity=DOWNLINK,
)
"""How our daemons read this driver's claims (``--dra-driver`` and the flags beside it)."""


def bits(mbps: int) -> str:
    """A capacity or request in bits per second, as DRA quantities carry it: ``200M``."""
    return f"{mbps}M"


def device_class() -> JSON:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": DEVICE_CLASS},
        "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{DRIVER}"'}}]},
    }


def _device(name: str, datapath: str, link: LinkBudget) -> JSON:
    return {
        "name": name,
        "allowMultipleAllocations": True,
        "attributes": {DATAPATH_ATTRIBUTE: {"string": datapath}},
        "capacity": {
            UPLINK: {"value": bits(link.ul_mbps)},
            DOWNLINK: {"value": bits(link.dl_mbps)},
        },
    }


def resource_slice(node: str, capacity: Usage) -> JSON:
    """The slice the driver's kubelet plugin would publish for ``node``."""
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": f"{node}-{DRIVER}"},
        "spec": {
            "driver": DRIVER,
            "nodeName": node,
            "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
            "devices": [
                _device(NIC, "network", capacity.network),
                _device(VSWITCH, "local", capacity.local),
            ],
        },
    }


def _request(name: str, datapath: str, ul_mbps: int, dl_mbps: int) -> JSON:
    selector = f'device.attributes["{DRIVER}"].{DATAPATH_ATTRIBUTE} == "{datapath}"'
    return {
        "name": name,
        "exactly": {
            "deviceClassName": DEVICE_CLASS,
            "selectors": [{"cel": {"expression": selector}}],
            "capacity": {"requests": {UPLINK: bits(ul_mbps), DOWNLINK: bits(dl_mbps)}},
        },
    }


def claim_template(
    name: str, namespace: str, *, ul_mbps: int, dl_mbps: int, link_local: bool = False
) -> JSON:
    """A ResourceClaimTemplate for pods that need ``ul_mbps``/``dl_mbps``: on the NIC and the
    virtual switch, or on the virtual switch only for link-local pods (as our charge)."""
    requests = [_request("local", "local", ul_mbps, dl_mbps)]
    if not link_local:
        requests.insert(0, _request("network", "network", ul_mbps, dl_mbps))
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"spec": {"devices": {"requests": requests}}},
    }


CLAIM_NAME = "bandwidth"
"""The name of the claim in the pod's ``spec.resourceClaims``."""


def claim_pod_spec(template: str) -> JSON:
    """What a pod spec adds to ask for bandwidth through ``template``: the pod's claim, and
    the first container's reference to it (``resources.claims``)."""
    return {
        "resourceClaims": [{"name": CLAIM_NAME, "resourceClaimTemplateName": template}],
        "claims": [{"name": CLAIM_NAME}],
    }


def with_claim(pod: JSON, template: str) -> JSON:
    """``pod`` asking for bandwidth through ``template`` (changed in place and returned)."""
    spec = pod["spec"]
    parts = claim_pod_spec(template)
    spec["resourceClaims"] = parts["resourceClaims"]
    spec["containers"][0].setdefault("resources", {})["claims"] = parts["claims"]
    return pod


def publish(api_client: ApiClient, capacities: Mapping[str, Usage], *, workers: int = 16) -> None:
    """Create the DeviceClass (if missing) and a ResourceSlice per node in ``capacities``."""
    status, body = rawapi.request(api_client, "POST", f"{API}/deviceclasses", body=device_class())
    if status not in (201, 409):
        raise RuntimeError(f"creating DeviceClass {DEVICE_CLASS}: HTTP {status}: {body}")

    def create(node: str) -> None:
        rawapi.request_ok(
            api_client,
            "POST",
            f"{API}/resourceslices",
            body=resource_slice(node, capacities[node]),
        )

    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(create, list(capacities)))  # the first failure is raised here


def unpublish(api_client: ApiClient, nodes: list[str], *, workers: int = 16) -> None:
    """Delete the nodes' ResourceSlices (missing ones are ignored)."""

    def delete(node: str) -> None:
        rawapi.request(api_client, "DELETE", f"{API}/resourceslices/{node}-{DRIVER}")

    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(delete, nodes))
