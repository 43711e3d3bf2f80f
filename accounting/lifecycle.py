"""A node's Bandwidth object is born and dies with the node.

- **Create** when a node in scope has none: capacity from the node's annotations and labels,
  else the defaults (``accounting.capacity``). This is the only time capacity is written:
  later edits of ``spec.capacity`` belong to users and survive restarts and resyncs. Pods
  already bound to the node with bandwidth annotations get their reservations in it from the
  start (``books.rebuilt_reservations``), so a Bandwidth deleted by hand comes back with its
  ledger. Those pods are listed from the apiserver, not taken from the watch cache: a pod
  watch that is seconds behind (a reconnect after an outage) would leave a pod bound
  meanwhile out of the ledger for good. The object is owned by the Node (an owner reference
  with the node's UID).
- **Delete** an object this controller created once a GET confirms its node is gone, or was
  made again under the same name (another UID): the cache may only be behind. The delete
  carries the object's UID as a precondition, so a newer object of that name survives.

A node whose capacity annotations cannot be read gets one Warning event per version, and no
Bandwidth until it is fixed: a capacity guessed too large would promise what the node lacks.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import structlog

from accounting.books import rebuilt_reservations
from accounting.capacity import CapacityError, node_capacity
from accounting.metrics import AccountingMetrics
from accounting.objects import (
    describe_capacity,
    metadata_of,
    name_of,
    node_owner_uid,
    reserved_uids,
)
from accounting.settings import AccountingSettings
from bandwidth.budget import Usage
from bandwidth.model import API_VERSION, KIND, MAX_RESERVATIONS, Reservation, new_bandwidth_object
from kubeio.errors import Conflict, NotFound, TooLarge
from kubeio.events import NORMAL, WARNING, EventRecorder, ObjectRef
from kubeio.pods import PodBasics, read_pod_basics
from kubeio.resources import BANDWIDTHS, NODES, PODS
from kubeio.rest import JSON, KubeApi

log = structlog.get_logger("accounting.lifecycle")

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"

# When a GET shows the cache lagging behind the apiserver, look again this much later.
CACHE_LAG_RETRY_SECONDS = 1.0


class Lifecycle:
    def __init__(
        self,
        api: KubeApi,
        settings: AccountingSettings,
        events: EventRecorder,
        metrics: AccountingMetrics,
    ) -> None:
        self._api = api
        self._settings = settings
        self._events = events
        self._metrics = metrics
        self._lock = threading.Lock()
        self._warned_nodes: dict[str, str] = {}  # node name -> resourceVersion warned about

    def node_gone(self, name: str) -> None:
        with self._lock:
            self._warned_nodes.pop(name, None)

    def read_node(self, name: str) -> JSON | None:
        try:
            return self._api.get(NODES.path(name=name))
        except NotFound:
            return None

    def delete_if_node_gone(self, name: str, bandwidth: JSON) -> float | None:
        """Delete the Bandwidth made for a node that is gone; seconds until a look again
        when the node turns out to exist (the cache is behind), else None."""
        owner_uid = node_owner_uid(bandwidth)
        node = self.read_node(name)
        if node is not None and metadata_of(node).get("uid") == owner_uid:
            return CACHE_LAG_RETRY_SECONDS
        uid = str(metadata_of(bandwidth).get("uid", ""))
        try:
            self._api.delete(BANDWIDTHS.path(name=name), preconditions={"uid": uid})
        except NotFound:  # gone already (an earlier reconcile, seen late by the cache)
            self._metrics.forget_node(name)
            return None
        except Conflict:
            return CACHE_LAG_RETRY_SECONDS  # a newer object of that name: look again
        self._metrics.bandwidths_deleted.inc()
        self._metrics.forget_node(name)
        log.info(
            "bandwidth_deleted",
            node=name,
            reason="node deleted" if node is None else "node re-created",
            reservations=len(reserved_uids(bandwidth)),
        )
        return None

    def create(self, name: str, node: JSON) -> JSON | None:
        """The node's new Bandwidth (or the one the cache had not shown yet); None when the
        node is going away or its capacity cannot be read."""
        metadata = metadata_of(node)
        if metadata.get("deletionTimestamp"):
            return None
        try:
            capacity = node_capacity(
                name,
                metadata.get("labels"),
                metadata.get("annotations"),
                self._settings.default_capacity,
            )
        except CapacityError as error:
            self._warn_node_capacity(node, error)
            return None
        rebuilt = rebuilt_reservations(
            name, self._pods_bound_to(name), now=datetime.now(UTC), limit=MAX_RESERVATIONS
        )
        try:
            created = self._create(name, str(metadata.get("uid")), capacity.capacity, rebuilt)
        except TooLarge as error:
            # Names too long for that many entries: the pods are charged as observed instead.
            log.error("rebuilt_ledger_too_large", node=name, entries=len(rebuilt), error=str(error))
            rebuilt = []
            created = self._create(name, str(metadata.get("uid")), capacity.capacity, rebuilt)
        except Conflict as error:
            if not error.already_exists:
                raise
            return self._api.get(BANDWIDTHS.path(name=name))  # the cache is behind
        self._metrics.bandwidths_created.inc()
        origin = ", ".join(capacity.from_node) or "defaults"
        log.info(
            "bandwidth_created",
            node=name,
            capacity=describe_capacity(created),
            capacity_from=origin,
            reservations=len(rebuilt),
        )
        held = f"; {len(rebuilt)} reservation(s) of pods bound to it" if rebuilt else ""
        self._events.record(
            ObjectRef.of(created, KIND, API_VERSION),
            NORMAL,
            "Created",
            f"Bandwidth created for node {name} with capacity {describe_capacity(created)} "
            f"(from {origin}){held}",
        )
        return created

    def _pods_bound_to(self, name: str) -> list[PodBasics]:
        pods, _ = self._api.list(PODS.path(), {"fieldSelector": f"spec.nodeName={name}"})
        return [read_pod_basics(pod, self._settings.request_policy) for pod in pods]

    def _create(
        self, name: str, node_uid: str, capacity: Usage, rebuilt: list[Reservation]
    ) -> JSON:
        body = new_bandwidth_object(
            name,
            capacity,
            labels={MANAGED_BY_LABEL: self._settings.component},
            reservations=rebuilt,
        )
        body["metadata"]["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}
        ]
        return self._api.create(BANDWIDTHS.path(), body)

    def _warn_node_capacity(self, node: JSON, error: CapacityError) -> None:
        name = name_of(node)
        version = str(metadata_of(node).get("resourceVersion", ""))
        with self._lock:
            if self._warned_nodes.get(name) == version:
                return
            self._warned_nodes[name] = version
        log.warning("node_capacity_invalid", node=name, error=str(error))
        self._events.record(
            ObjectRef.of(node, "Node", "v1"),
            WARNING,
            "InvalidBandwidthCapacity",
            f"{error}; no Bandwidth is created until it is fixed",
        )
