"""Read the cluster once and build the scheduler's own view of it.

Two halves, kept apart so the second is tested without a server:

- ``Reader`` (I/O): GET and LIST through ``KubeApi``, each failure turned into a one-line
  ``PluginError`` naming the verb and resource; ``fetch_cluster`` LISTs nodes, Bandwidth
  objects, ReplicaSets, StatefulSets, live pods, namespaces and the volume objects, once each;
  ``fetch_node_holders`` reads one node's Bandwidth object and the pods it names.
- ``build_snapshot`` (pure): feeds those lists to ``scheduler.cluster.ClusterState`` through the
  same handlers its watch caches call, so filters and scores see exactly what the scheduler
  would see — minus decisions in flight inside a running scheduler, which no one else can see.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bandwidth.dra import holding_from_status
from bandwidth.model import GROUP, VERSION
from kubectl_bandwidth.errors import CrdMissing, NotFoundError, ServerRefused, api_failure
from kubeio.errors import ApiError
from kubeio.resources import (
    BANDWIDTHS,
    CSIDRIVERS,
    CSINODES,
    CSISTORAGECAPACITIES,
    NAMESPACES,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    STORAGECLASSES,
    Resource,
)
from kubeio.rest import KubeApi
from kubeio.watchcache import ADDED
from scheduler.cluster import ClusterState
from scheduler.config import SchedulerConfig
from scheduler.queue import SchedulingQueue

JSON = dict[str, Any]
T = TypeVar("T")

# Succeeded and Failed pods hold nothing: the scheduler drops them, so they need not be read.
LIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"
_DISCOVERY = Resource("", "", "API groups (discovery)", namespaced=False)


class Reader:
    """GET and LIST with every failure reported as the ``PluginError`` a user can act on."""

    def __init__(self, api: KubeApi) -> None:
        self._api = api

    @property
    def server(self) -> str:
        return self._api.host

    def _call(
        self,
        verb: str,
        resource: Resource,
        request: Callable[[], T],
        *,
        namespace: str | None = None,
        name: str | None = None,
    ) -> T:
        try:
            return request()
        except ApiError as error:
            raise api_failure(
                error,
                verb=verb,
                resource=resource,
                namespace=namespace,
                name=name,
                server=self.server,
            ) from error
        except json.JSONDecodeError as error:
            # An unregistered API group answers 404 with a plain-text body.
            raise ServerRefused(
                f"{verb} {resource.plural}: the apiserver answered with a body that is not JSON"
            ) from error

    def list(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> list[JSON]:
        path = resource.path(namespace=namespace)
        items, _ = self._call(
            "list", resource, lambda: self._api.list(path, query), namespace=namespace
        )
        return items

    def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> JSON:
        path = resource.path(namespace=namespace, name=name)
        return self._call(
            "get", resource, lambda: self._api.get(path), namespace=namespace, name=name
        )

    def require_bandwidth_crd(self) -> None:
        """Raise ``CrdMissing`` unless ``networking.vaclab.org/v1`` is served.

        Discovery is readable by every authenticated user, and it tells "not installed" apart
        from "forbidden" before any request on the Bandwidth resource is made.
        """
        groups = self._call("get", _DISCOVERY, lambda: self._api.get("/apis"))
        for group in groups.get("groups") or []:
            if group.get("name") == GROUP and any(
                v.get("version") == VERSION for v in group.get("versions") or []
            ):
                return
        raise CrdMissing(BANDWIDTHS, self.server)


@dataclass(frozen=True, slots=True)
class ClusterLists:
    """One LIST of each kind the scheduler watches, as raw JSON."""

    nodes: list[JSON] = field(default_factory=list)
    bandwidths: list[JSON] = field(default_factory=list)
    replicasets: list[JSON] = field(default_factory=list)
    statefulsets: list[JSON] = field(default_factory=list)
    pods: list[JSON] = field(default_factory=list)
    namespaces: list[JSON] = field(default_factory=list)
    volumes: dict[Resource, list[JSON]] = field(default_factory=dict)
    """PersistentVolumes, claims, StorageClasses, CSINodes, CSIDrivers, capacities."""


VOLUME_KINDS = (
    PERSISTENTVOLUMES,
    PERSISTENTVOLUMECLAIMS,
    STORAGECLASSES,
    CSINODES,
    CSIDRIVERS,
    CSISTORAGECAPACITIES,
)


def fetch_cluster(reader: Reader) -> ClusterLists:
    """LIST everything the scheduler's view is built from; Bandwidth objects first, so a
    missing CRD or a missing permission on them is the error the user sees."""
    reader.require_bandwidth_crd()
    return ClusterLists(
        bandwidths=reader.list(BANDWIDTHS),
        nodes=reader.list(NODES),
        replicasets=reader.list(REPLICASETS),
        statefulsets=reader.list(STATEFULSETS),
        pods=reader.list(PODS, query={"fieldSelector": LIVE_PODS}),
        namespaces=reader.list(NAMESPACES),
        volumes={kind: reader.list(kind) for kind in VOLUME_KINDS},
    )


@dataclass(slots=True)
class Snapshot:
    """The scheduler's view of the cluster at one moment, and the objects it was built from."""

    config: SchedulerConfig
    state: ClusterState
    bandwidth_objects: dict[str, JSON]
    ledger_problems: dict[str, str]
    pods: list[JSON] = field(default_factory=list)
    """The live pods listed, as the apiserver returned them."""


def node_of_bandwidth(obj: Mapping[str, Any]) -> str:
    """The node a Bandwidth object budgets for: the one it is named after, as for the daemons
    (a differing ``spec.node`` is a problem they report, never a redirection)."""
    return str((obj.get("metadata") or {}).get("name", ""))


def build_snapshot(lists: ClusterLists, config: SchedulerConfig) -> Snapshot:
    """Pure: the lists replayed through ``ClusterState``'s watch handlers as ADDED events.

    ReplicaSets and StatefulSets go before pods, so each pod is counted under its workload
    as it is added, as the scheduler's caches do once synced.
    """
    problems: dict[str, str] = {}

    def note_problem(node: str, problem: str) -> None:
        problems[node] = problem

    state = ClusterState(config, SchedulingQueue(), on_invalid_ledger=note_problem)
    for node in lists.nodes:
        state.on_node(ADDED, None, node)
    for obj in lists.bandwidths:
        state.on_bandwidth(ADDED, None, obj)
        # What DRA claims hold, as an accounting controller with --dra-driver wrote it.
        held = holding_from_status(obj.get("status"))
        if held is not None:
            state.set_dra_holding(node_of_bandwidth(obj), held)
    for replicaset in lists.replicasets:
        state.on_replicaset(ADDED, None, replicaset)
    for statefulset in lists.statefulsets:
        state.on_statefulset(ADDED, None, statefulset)
    for namespace in lists.namespaces:
        state.on_namespace(ADDED, None, namespace)
    volumes = state.volumes
    handlers = {
        PERSISTENTVOLUMES: volumes.on_volume,
        PERSISTENTVOLUMECLAIMS: volumes.on_claim,
        STORAGECLASSES: volumes.on_storage_class,
        CSINODES: volumes.on_csinode,
        CSIDRIVERS: volumes.on_driver,
        CSISTORAGECAPACITIES: volumes.on_capacity,
    }
    for kind, items in lists.volumes.items():
        for obj in items:
            handlers[kind](ADDED, None, obj)
    for pod in lists.pods:
        state.on_pod(ADDED, None, pod)
    return Snapshot(
        config=config,
        state=state,
        bandwidth_objects={node_of_bandwidth(obj): obj for obj in lists.bandwidths},
        ledger_problems=problems,
        pods=list(lists.pods),
    )


@dataclass(frozen=True, slots=True)
class NodeHolders:
    """A node's Bandwidth object and the pods that may hold bandwidth on it."""

    node: str
    bandwidth: JSON
    pods: list[JSON]


def fetch_node_holders(reader: Reader, node: str) -> NodeHolders:
    """The node's Bandwidth object, the live pods bound to it, and every pod its ledger names.

    Pods named by the ledger but not bound here (pending, bound elsewhere, deleted) are read
    one by one: there are few, and reading them all would cost a LIST of every pod.
    """
    reader.require_bandwidth_crd()
    try:
        bandwidth = reader.get(BANDWIDTHS, node)
    except NotFoundError as error:
        raise NotFoundError(
            f"node {node!r} has no Bandwidth object (is vaclab-accounting running? "
            "kubectl get bandwidths lists them)"
        ) from error
    pods = reader.list(PODS, query={"fieldSelector": f"spec.nodeName={node},{LIVE_PODS}"})
    seen = {str(p["metadata"].get("uid", "")) for p in pods}
    for entry in (bandwidth.get("spec") or {}).get("reservations") or []:
        if not isinstance(entry, Mapping) or entry.get("podUID") in seen:
            continue
        namespace, name = str(entry.get("podNamespace", "")), str(entry.get("podName", ""))
        if not namespace or not name:
            continue
        try:
            pod = reader.get(PODS, name, namespace=namespace)
        except NotFoundError:
            continue
        pods.append(pod)
        seen.add(str(pod["metadata"].get("uid", "")))
    return NodeHolders(node=node, bandwidth=bandwidth, pods=pods)
