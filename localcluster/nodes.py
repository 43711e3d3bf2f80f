"""Simulated nodes: Node objects that look Ready to schedulers and controllers, with no kubelet.

Each node gets the labels a real kubelet sets (``kubernetes.io/hostname``, ``kubernetes.io/os``,
``kubernetes.io/arch``), a ``topology.kubernetes.io/zone`` taken round-robin from ``zones``,
the marker :data:`SIMULATED_LABEL` ``="true"``, capacity = allocatable, the ``Ready``
condition ``True`` and two addresses: an ``InternalIP`` in ``127.0.0.0/8`` (nothing listens
there: no traffic ever leaves the machine) and the ``Hostname``.

Nothing heartbeats these nodes: run kube-controller-manager without its node lifecycle
controller (``ControlPlane.start_controller_manager`` does), or they turn NotReady.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubernetes.client import ApiClient

from localcluster import rawapi

log = logging.getLogger(__name__)

SIMULATED_LABEL = "vaclab.org/simulated"
SIMULATED_SELECTOR = f"{SIMULATED_LABEL}=true"
ZONE_LABEL = "topology.kubernetes.io/zone"
HOSTNAME_LABEL = "kubernetes.io/hostname"
NOT_READY_TAINT_KEY = "node.kubernetes.io/not-ready"
DEFAULT_ZONES: tuple[str, ...] = ("zone-a", "zone-b", "zone-c")

T = TypeVar("T")


def node_name(name_prefix: str, index: int) -> str:
    """``sim-node-0007``: the name of simulated node ``index``."""
    return f"{name_prefix}-{index:04d}"


def node_ip(index: int) -> str:
    """A distinct loopback address per index (``127.1.0.0`` onwards, 16M of them)."""
    if not 0 <= index < 1 << 24:
        raise ValueError(f"node index {index} out of range")
    high = 1 + (index >> 16) % 255
    return f"127.{high}.{(index >> 8) & 0xFF}.{index & 0xFF}"


def node_body(
    name: str,
    index: int,
    *,
    cpu: str,
    memory: str,
    pods: str,
    ephemeral_storage: str,
    zone: str | None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, Any]] | None = None,
    extended_resources: Mapping[str, str] | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """The JSON body of one simulated Node (metadata, spec and status)."""
    now = now or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    node_labels = {
        HOSTNAME_LABEL: name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        SIMULATED_LABEL: "true",
    }
    if zone is not None:
        node_labels[ZONE_LABEL] = zone
    node_labels.update(labels or {})
    resources = {
        "cpu": cpu,
        "memory": memory,
        "pods": pods,
        "ephemeral-storage": ephemeral_storage,
        **(extended_resources or {}),
    }

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels,
            "annotations": dict(annotations or {}),
        },
        "spec": {"taints": [dict(t) for t in taints or []]},
        "status": {
            "capacity": resources,
            "allocatable": dict(resources),
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "simulated"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "simulated"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "simulated"),
                condition("Ready", "True", "KubeletReady", "simulated node, no kubelet"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": node_ip(index)},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "vaclab simulated node",
                "kernelVersion": "0.0.0",
                "kubeletVersion": "v0.0.0-simulated",
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "simulated://0",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }


def _create_one(api_client: ApiClient, body: dict[str, Any]) -> None:
    name = body["metadata"]["name"]
    created = rawapi.request_ok(api_client, "POST", "/api/v1/nodes", body=body)
    # Node creation keeps status as sent (kubelets register that way); fix it if a future
    # apiserver drops it.
    if created.get("status", {}).get("allocatable") != body["status"]["allocatable"]:
        rawapi.request_ok(
            api_client,
            "PATCH",
            f"/api/v1/nodes/{name}/status",
            body={"status": body["status"]},
            content_type=rawapi.MERGE_PATCH,
        )
    # The TaintNodesByCondition admission plugin (if on) adds a not-ready taint that only the
    # node lifecycle controller would lift.
    taints = created.get("spec", {}).get("taints") or []
    if any(t.get("key") == NOT_READY_TAINT_KEY for t in taints):
        rawapi.request_ok(
            api_client,
            "PATCH",
            f"/api/v1/nodes/{name}",
            body={"spec": {"taints": body["spec"]["taints"] or None}},
            content_type=rawapi.MERGE_PATCH,
        )


def _run_parallel(fn: Callable[[T], object], items: Sequence[T], workers: int) -> None:
    """Apply ``fn`` to every item on ``workers`` threads; the first exception cancels the
    items not started yet and is re-raised."""
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        futures = [pool.submit(fn, item) for item in items]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            future.cancel()
        for future in futures:
            if not future.cancelled():
                error = future.exception()
                if error is not None:
                    raise error


def create_simulated_nodes(
    api_client: ApiClient,
    count: int,
    *,
    name_prefix: str = "sim-node",
    start_index: int = 0,
    cpu: str = "32",
    memory: str = "128Gi",
    pods: str = "110",
    ephemeral_storage: str = "100Gi",
    zones: Sequence[str] = DEFAULT_ZONES,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, Any]] | None = None,
    extended_resources: Mapping[str, str] | None = None,
    workers: int = 16,
) -> list[str]:
    """Create ``count`` Ready simulated nodes named ``<name_prefix>-<index>``; return names.

    Indexes run from ``start_index``; node ``i`` is in ``zones[i % len(zones)]`` (no zone
    label if ``zones`` is empty). ``taints`` are Node taint dicts
    (``{"key": ..., "value": ..., "effect": "NoSchedule"}``). Requests go out on ``workers``
    threads with plain-dict bodies; the first failure cancels the rest and is raised
    (``ApiException``; 409 if a node of that name exists).
    """
    if count <= 0:
        return []
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    bodies = []
    for index in range(start_index, start_index + count):
        name = node_name(name_prefix, index)
        bodies.append(
            node_body(
                name,
                index,
                cpu=cpu,
                memory=memory,
                pods=pods,
                ephemeral_storage=ephemeral_storage,
                zone=zones[index % len(zones)] if zones else None,
                labels=labels,
                annotations=annotations,
                taints=taints,
                extended_resources=extended_resources,
                now=now,
            )
        )
    started = time.monotonic()
    _run_parallel(lambda body: _create_one(api_client, body), bodies, workers)
    log.info("created %d simulated nodes in %.2fs", count, time.monotonic() - started)
    return [body["metadata"]["name"] for body in bodies]


def list_simulated_nodes(
    api_client: ApiClient, label_selector: str = SIMULATED_SELECTOR
) -> list[dict[str, Any]]:
    """Every Node matching ``label_selector`` (default: all simulated nodes; ``""``: all
    nodes), as dicts."""
    query = {"labelSelector": label_selector} if label_selector else {}
    reply = rawapi.request_ok(api_client, "GET", "/api/v1/nodes", query=query)
    return list(reply.get("items", []))


def delete_simulated_nodes(
    api_client: ApiClient,
    *,
    names: Iterable[str] | None = None,
    label_selector: str = SIMULATED_SELECTOR,
    timeout: float = 60.0,
    workers: int = 16,
) -> int:
    """Delete simulated nodes and wait until they are gone; return how many were deleted.

    With ``names``, exactly those nodes (missing ones are ignored); otherwise every node
    matching ``label_selector`` in one ``deletecollection`` call.
    """
    if names is not None:
        wanted = list(names)
        deleted: list[str] = []

        def delete(name: str) -> None:
            status, body = rawapi.request(api_client, "DELETE", f"/api/v1/nodes/{name}")
            if status in (200, 202):
                deleted.append(name)
            elif status != 404:
                raise RuntimeError(f"deleting node {name}: HTTP {status}: {body}")

        _run_parallel(delete, wanted, workers)
        remaining = set(wanted)
        deadline = time.monotonic() + timeout
        while True:
            remaining &= {n["metadata"]["name"] for n in list_simulated_nodes(api_client, "")}
            if not remaining:
                return len(deleted)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nodes still present after {timeout:.0f}s: {sorted(remaining)}")
            time.sleep(0.1)
    before = len(list_simulated_nodes(api_client, label_selector))
    rawapi.request_ok(
        api_client, "DELETE", "/api/v1/nodes", query={"labelSelector": label_selector}
    )
    deadline = time.monotonic() + timeout
    while list_simulated_nodes(api_client, label_selector):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nodes matching {label_selector} still present after {timeout}s")
        time.sleep(0.1)
    return before
