"""The accounting controller: keeps every node's Bandwidth object true to the cluster.

Reads come from four watch caches (nodes, pods, bandwidths, replicasets), never from a LIST
per reconcile. Watch handlers only update the indexes below and queue node names; workers
take a node name from the queue and reconcile it (level-based: the reconcile looks at the
whole state of the node, not at the event that queued it).

Queues and locks:

- ``_queue``       — node names to reconcile (``kubeio.workqueue.WorkQueue``): de-duplicated,
                     never one name in two workers, failures retried with exponential back-off,
                     every name re-queued each resync period.
- ``_index_lock``  — guards the three indexes (pods by node, pods by ReplicaSet, Bandwidths
                     holding a reservation for a pod UID) and the controller's memories (pods
                     and nodes warned about, first sight of undated reservations, the last
                     status written). It is the only lock this module takes, and it is never
                     held while calling the API or the queue.

Reconcile of one node name, in order:

1. Node out of scope (``--node-selector``): nothing.
2. Node gone: a Bandwidth this controller created (owner reference to the Node) is deleted
   once a GET confirms the node is gone; a Bandwidth someone else created is kept with state
   NodeNotFound (only without a node selector: otherwise it is not known to be ours).
3. No Bandwidth yet: create it with the node's capacity (``accounting.capacity``). This is
   the only time capacity is written: later edits of ``spec.capacity`` belong to users and
   survive restarts and resyncs; later node label changes are not applied. Pods already bound
   to the node with bandwidth annotations get their reservations in it from the start
   (``books.rebuilt_reservations``): a Bandwidth deleted by hand comes back with its ledger.
4. Release stale reservations (``accounting.books``) with a merge patch carrying the
   resourceVersion read; on 409 Conflict GET the object and decide again (reading the pods
   again too), so a reservation the scheduler writes, or a pod it binds, at the same moment is
   never erased.
5. Write ``/status`` only if it differs from the stored one but for timestamps (and was not
   already written from the same resourceVersion: the cache sees our own writes late).

``start()`` fills the caches (a standby replica can keep them warm); ``run(stop)`` is the
write loop, to be started when leadership is acquired and to return when ``stop`` is set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from accounting.books import Books, Release, keep_books, rebuilt_reservations
from accounting.capacity import CapacityError, node_capacity
from accounting.metrics import AccountingMetrics
from accounting.pods import PodView, Workload, controller_of, slim_metadata_only, slim_pod
from accounting.settings import AccountingSettings
from accounting.status import (
    desired_status,
    oversubscription_message,
    oversubscription_news,
    same_status,
)
from bandwidth.model import (
    API_VERSION,
    KIND,
    MalformedBandwidth,
    NodeBandwidth,
    new_bandwidth_object,
    parse_bandwidth,
    reservations_patch,
)
from kubeio.errors import ApiError, Conflict, NotFound
from kubeio.events import NORMAL, WARNING, EventRecorder, ObjectRef
from kubeio.guarded import patch_if_generation
from kubeio.resources import BANDWIDTHS, NODES, PODS, REPLICASETS
from kubeio.rest import JSON, KubeApi
from kubeio.watchcache import DELETED, WatchCache
from kubeio.workqueue import WorkQueue

log = structlog.get_logger("accounting.controller")

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
CRD_HINT = "install crds/bandwidths.networking.vaclab.org.yaml (kubectl apply -f crds/)"

# A release is decided again after each conflict; beyond this many the reconcile fails and is
# retried with back-off rather than spinning against a busy scheduler.
_MAX_WRITE_ATTEMPTS = 8
# When a GET shows the cache lagging behind the apiserver, look again this much later.
_CACHE_LAG_RETRY_SECONDS = 1.0
# Reconcile a little after a grace period ends, so that ``now >= deadline`` holds.
_REVIEW_MARGIN_SECONDS = 0.05


class ReleaseContention(RuntimeError):
    """Every attempt to release stale reservations met a conflicting write."""


def _name(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("name", ""))


def _metadata(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    metadata = (obj or {}).get("metadata") or {}
    return metadata if isinstance(metadata, Mapping) else {}


def _node_name_of_pod(pod: Mapping[str, Any] | None) -> str:
    return str(((pod or {}).get("spec") or {}).get("nodeName") or "")


def _reserved_uids(bandwidth: Mapping[str, Any] | None) -> set[str]:
    entries = ((bandwidth or {}).get("spec") or {}).get("reservations") or []
    return {str(e.get("podUID")) for e in entries if isinstance(e, Mapping) and e.get("podUID")}


def _replicaset_of_pod(pod: Mapping[str, Any] | None) -> str:
    owner = controller_of(_metadata(pod))
    if owner is None or owner.kind != "ReplicaSet":
        return ""
    return f"{_metadata(pod).get('namespace', '')}/{owner.name}"


def _node_owner_uid(bandwidth: Mapping[str, Any]) -> str:
    """The UID of the Node this Bandwidth was created for, or "" if a user created it."""
    for reference in _metadata(bandwidth).get("ownerReferences") or []:
        if reference.get("kind") == "Node" and reference.get("apiVersion") == "v1":
            return str(reference.get("uid", ""))
    return ""


class Controller:
    """The accounting controller of one process; see the module docstring.

    Shaped as the daemons' worker: ``start`` (caches, on every replica), ``readiness``,
    ``run(stop)`` (writes, only while leading; may be called again after a lost lease) and
    ``close`` (once, at the end).
    """

    def __init__(
        self,
        api: KubeApi,
        settings: AccountingSettings,
        *,
        registry: CollectorRegistry,
        events: EventRecorder | None = None,
    ) -> None:
        self._api = api
        self._settings = settings
        self._events = events or EventRecorder(api, settings.component)
        self._metrics = AccountingMetrics(registry)
        keys = settings.annotation_keys
        kept_annotations = (keys.egress, keys.ingress, keys.link_local)
        self._nodes = WatchCache(api, NODES, transform=slim_metadata_only)
        self._pods = WatchCache(api, PODS, transform=lambda pod: slim_pod(pod, kept_annotations))
        self._bandwidths = WatchCache(api, BANDWIDTHS, missing_hint=CRD_HINT)
        self._replicasets = WatchCache(api, REPLICASETS, transform=slim_metadata_only)
        self._caches = (self._nodes, self._pods, self._bandwidths, self._replicasets)
        self._queue: WorkQueue[str] = WorkQueue(base_delay=0.1, max_delay=120.0)
        self._index_lock = threading.Lock()
        self._pods_by_node: dict[str, set[str]] = {}
        self._pods_by_replicaset: dict[str, set[str]] = {}
        self._holders: dict[str, set[str]] = {}  # pod UID -> Bandwidth names reserving for it
        self._warned_pods: dict[str, str] = {}  # pod UID -> the error it was warned about
        self._warned_nodes: dict[str, str] = {}  # node name -> resourceVersion warned about
        self._first_seen: dict[str, datetime] = {}  # reservations without reservedAt
        # Bandwidth name -> (resourceVersion the status was computed from, status written):
        # the cache delivers our own write late, and the version before it must not be
        # mistaken for a status that still needs writing.
        self._last_writes: dict[str, tuple[str, JSON]] = {}
        self._nodes.add_handler(self._on_node)
        self._pods.add_handler(self._on_pod)
        self._bandwidths.add_handler(self._on_bandwidth)
        self._replicasets.add_handler(self._on_replicaset)

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Start the watch caches and the event recorder; returns at once."""
        self._events.start()
        for cache in self._caches:
            cache.start()

    def readiness(self) -> tuple[bool, str]:
        """A readiness check: every cache has listed once."""
        pending = [cache.kind for cache in self._caches if not cache.synced]
        return (not pending, "caches not synced: " + ", ".join(pending) if pending else "")

    def wait_synced(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for cache in self._caches:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not cache.wait_synced(left):
                return False
        return True

    def run(self, stop: threading.Event) -> None:
        """Reconcile until ``stop`` is set: workers, plus a resync that queues every node.

        Waits for the caches first (a missing CRD keeps the bandwidths cache from syncing: the
        cache logs ``resource_not_served`` and retries, and nothing is written meanwhile).
        """
        while not stop.is_set() and not self.wait_synced(timeout=1.0):
            pass
        if stop.is_set():
            return
        log.info("caches_synced", nodes=len(self._nodes), pods=len(self._pods))
        self.resync()
        workers = [
            threading.Thread(target=self._work, args=(stop,), name=f"reconcile-{i}", daemon=True)
            for i in range(max(1, self._settings.workers))
        ]
        for worker in workers:
            worker.start()
        period = self._settings.resync_period_seconds
        while not stop.wait(period if period > 0 else None):
            self.resync()
        for worker in workers:
            worker.join()

    def close(self) -> None:
        """Stop the caches and the queue, and post the Events still queued."""
        self._queue.shut_down()
        for cache in self._caches:
            cache.stop(timeout=0.5)
        self._events.stop()

    def resync(self) -> None:
        """Queue every node and every Bandwidth: a level-based look at the whole cluster."""
        names = {_name(node) for node in self._nodes.items()}
        names.update(_name(bandwidth) for bandwidth in self._bandwidths.items())
        log.debug("resync", names=len(names))
        for name in names:
            self._queue.add(name)

    def _work(self, stop: threading.Event) -> None:
        while not stop.is_set():
            name = self._queue.get(timeout=0.5)
            if name is None:
                if self._queue.shutting_down:
                    return
                continue
            started = time.perf_counter()
            try:
                review_in = self.reconcile(name)
            except (ApiError, ReleaseContention) as error:
                self._metrics.reconcile_errors.inc()
                delay = self._queue.add_rate_limited(name)
                log.warning(
                    "reconcile_failed",
                    node=name,
                    error=str(error),
                    error_type=type(error).__name__,
                    retry_in_seconds=round(delay, 2),
                )
            except Exception:  # a bug: keep the stack, keep the other nodes going
                self._metrics.reconcile_errors.inc()
                delay = self._queue.add_rate_limited(name)
                log.exception("reconcile_crashed", node=name, retry_in_seconds=round(delay, 2))
            else:
                self._queue.forget(name)
                if review_in is not None:
                    self._queue.add_after(name, review_in)
            finally:
                self._metrics.reconcile_duration.observe(time.perf_counter() - started)
                self._queue.done(name)

    # --------------------------------------------------------------- watch handlers
    def _on_node(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        self._queue.add(_name(new or old))
        if kind == DELETED:
            with self._index_lock:
                self._warned_nodes.pop(_name(old), None)

    def _on_pod(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        key = f"{_metadata(new or old).get('namespace', '')}/{_name(new or old)}"
        uid = str(_metadata(new or old).get("uid", ""))
        old_node, new_node = _node_name_of_pod(old), _node_name_of_pod(new)
        old_rs, new_rs = _replicaset_of_pod(old), _replicaset_of_pod(new)
        with self._index_lock:
            _move(self._pods_by_node, key, old_node, new_node)
            _move(self._pods_by_replicaset, key, old_rs, new_rs)
            names = {old_node, new_node} | self._holders.get(uid, set())
            if kind == DELETED:
                self._warned_pods.pop(uid, None)
        for name in names - {""}:
            self._queue.add(name)

    def _on_bandwidth(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        name = _name(new or old)
        before, after = _reserved_uids(old), _reserved_uids(new)
        with self._index_lock:
            if kind == DELETED:
                self._last_writes.pop(name, None)
            for uid in before - after:
                holders = self._holders.get(uid)
                if holders is not None:
                    holders.discard(name)
                    if not holders:
                        del self._holders[uid]
                self._first_seen.pop(uid, None)
            for uid in after - before:
                self._holders.setdefault(uid, set()).add(name)
        self._queue.add(name)

    def _on_replicaset(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        if controller_of(_metadata(old)) == controller_of(_metadata(new)):
            return
        key = f"{_metadata(new or old).get('namespace', '')}/{_name(new or old)}"
        with self._index_lock:
            pod_keys = list(self._pods_by_replicaset.get(key, ()))
        for pod_key in pod_keys:
            node = _node_name_of_pod(self._pods.get(pod_key))
            if node:
                self._queue.add(node)

    # -------------------------------------------------------------------- reconcile
    def reconcile(self, name: str) -> float | None:
        """Bring node ``name``'s Bandwidth in line; returns seconds until it wants a look
        again (an unbound reservation's grace ending, a lagging cache), or None."""
        node = self._nodes.get(name)
        bandwidth = self._bandwidths.get(name)
        if node is not None and not self._settings.node_selector.matches(
            _metadata(node).get("labels")
        ):
            self._metrics.forget_node(name)
            return None
        if node is None:
            return self._reconcile_without_node(name, bandwidth)
        if bandwidth is None:
            bandwidth = self._create(name, node)
            if bandwidth is None:
                return None
        elif _node_owner_uid(bandwidth) not in ("", _metadata(node).get("uid")):
            # Created for an earlier node of that name: start afresh, as the garbage collector
            # would, but only once a GET shows the cache is not merely behind.
            return self._delete_if_node_gone(name, bandwidth)
        if _metadata(bandwidth).get("deletionTimestamp"):
            return None
        return self._settle(name, bandwidth, node_exists=True)

    def _reconcile_without_node(self, name: str, bandwidth: JSON | None) -> float | None:
        if bandwidth is None:
            self._metrics.forget_node(name)
            return None
        if _node_owner_uid(bandwidth):
            return self._delete_if_node_gone(name, bandwidth)
        if not self._settings.node_selector.is_empty():
            return None  # made by someone else for a node we cannot see: not ours to judge
        if self._read_node(name) is not None:
            return _CACHE_LAG_RETRY_SECONDS
        return self._settle(name, bandwidth, node_exists=False)

    def _read_node(self, name: str) -> JSON | None:
        try:
            return self._api.get(NODES.path(name=name))
        except NotFound:
            return None

    def _delete_if_node_gone(self, name: str, bandwidth: JSON) -> float | None:
        owner_uid = _node_owner_uid(bandwidth)
        node = self._read_node(name)
        if node is not None and _metadata(node).get("uid") == owner_uid:
            return _CACHE_LAG_RETRY_SECONDS
        uid = str(_metadata(bandwidth).get("uid", ""))
        try:
            self._api.delete(BANDWIDTHS.path(name=name), preconditions={"uid": uid})
        except NotFound:  # gone already (an earlier reconcile, seen late by the cache)
            self._metrics.forget_node(name)
            return None
        except Conflict:
            return _CACHE_LAG_RETRY_SECONDS  # a newer object of that name: look again
        self._metrics.bandwidths_deleted.inc()
        self._metrics.forget_node(name)
        log.info(
            "bandwidth_deleted",
            node=name,
            reason="node deleted" if node is None else "node re-created",
            reservations=len(_reserved_uids(bandwidth)),
        )
        return None

    def _create(self, name: str, node: JSON) -> JSON | None:
        metadata = _metadata(node)
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
            name,
            self._pods_on(name),
            policy=self._settings.request_policy,
            now=datetime.now(UTC),
        )
        body = new_bandwidth_object(
            name,
            capacity.capacity,
            labels={MANAGED_BY_LABEL: self._settings.component},
            reservations=rebuilt,
        )
        body["metadata"]["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Node", "name": name, "uid": str(metadata.get("uid"))}
        ]
        try:
            created = self._api.create(BANDWIDTHS.path(), body)
        except Conflict as error:
            if not error.already_exists:
                raise
            return self._api.get(BANDWIDTHS.path(name=name))  # the cache is behind
        self._metrics.bandwidths_created.inc()
        origin = ", ".join(capacity.from_node) or "defaults"
        log.info(
            "bandwidth_created",
            node=name,
            capacity=_describe_capacity(created),
            capacity_from=origin,
            reservations=len(rebuilt),
        )
        held = f"; {len(rebuilt)} reservation(s) of pods bound to it" if rebuilt else ""
        self._events.record(
            ObjectRef.of(created, KIND, API_VERSION),
            NORMAL,
            "Created",
            f"Bandwidth created for node {name} with capacity {_describe_capacity(created)} "
            f"(from {origin}){held}",
        )
        return created

    def _pods_on(self, node: str) -> list[PodView]:
        with self._index_lock:
            pod_keys = list(self._pods_by_node.get(node, ()))
        return [PodView.from_json(pod) for pod in map(self._pods.get, pod_keys) if pod is not None]

    def _warn_node_capacity(self, node: JSON, error: CapacityError) -> None:
        name = _name(node)
        version = str(_metadata(node).get("resourceVersion", ""))
        with self._index_lock:
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

    def _books(self, bandwidth: NodeBandwidth, fresh_pods: Mapping[str, PodView | None]) -> Books:
        with self._index_lock:
            for uid, reservation in bandwidth.reservations.items():
                if reservation.reserved_at is None and uid not in self._first_seen:
                    self._first_seen[uid] = datetime.now(UTC)
            first_seen = dict(self._first_seen)
        pods_on_node = self._pods_on(bandwidth.name)
        reserved_pods: dict[str, PodView | None] = {}
        for uid, reservation in bandwidth.reservations.items():
            if uid in fresh_pods:
                reserved_pods[uid] = fresh_pods[uid]
                continue
            pod = self._pods.get(f"{reservation.pod_namespace}/{reservation.pod_name}")
            reserved_pods[uid] = PodView.from_json(pod) if pod is not None else None
        return keep_books(
            bandwidth,
            pods_on_node,
            reserved_pods,
            policy=self._settings.request_policy,
            unbound_grace=timedelta(seconds=self._settings.unbound_grace_seconds),
            now=datetime.now(UTC),
            replicaset_owner=self._replicaset_owner,
            first_seen=first_seen,
        )

    def _replicaset_owner(self, namespace: str, name: str) -> Workload | None:
        return controller_of(_metadata(self._replicasets.get(f"{namespace}/{name}")))

    def _read_pod(self, namespace: str, name: str) -> PodView | None:
        try:
            return PodView.from_json(self._api.get(PODS.path(namespace=namespace, name=name)))
        except NotFound:
            return None

    def _settle(self, name: str, raw: JSON, *, node_exists: bool) -> float | None:
        """Release what is stale, then write the status if it changed."""
        fresh_pods: dict[str, PodView | None] = {}
        for _ in range(_MAX_WRITE_ATTEMPTS):
            try:
                bandwidth = parse_bandwidth(raw)
            except MalformedBandwidth as error:
                log.error("bandwidth_malformed", node=name, error=str(error))
                return None
            books = self._books(bandwidth, fresh_pods)
            unconfirmed = [
                r.reservation
                for r in books.releases
                if r.needs_fresh_pod and r.reservation.pod_uid not in fresh_pods
            ]
            if unconfirmed:
                # The cache may not show a pod just created or bound: ask the apiserver.
                for reservation in unconfirmed:
                    fresh_pods[reservation.pod_uid] = self._read_pod(
                        reservation.pod_namespace, reservation.pod_name
                    )
                continue
            if not books.releases:
                break
            patched = self._release(bandwidth, books.releases)
            if patched is None:
                return None  # the Bandwidth is gone
            raw = patched
            # A pod read before this write may have been bound while it raced: read it again.
            fresh_pods.clear()
        else:
            raise ReleaseContention(
                f"Bandwidth {name}: {_MAX_WRITE_ATTEMPTS} attempts to release stale reservations "
                "met conflicting writes"
            )
        if bandwidth.problems:
            log.warning("bandwidth_entries_ignored", node=name, problems=list(bandwidth.problems))
        self._write_status(name, raw, bandwidth, books, node_exists=node_exists)
        self._report_unhonoured(books)
        self._metrics.record_books(name, books)
        if books.review_at is None:
            return None
        wait = (books.review_at - datetime.now(UTC)).total_seconds()
        return max(0.0, wait) + _REVIEW_MARGIN_SECONDS

    def _release(self, bandwidth: NodeBandwidth, releases: Iterable[Release]) -> JSON | None:
        """Patch the ledger without ``releases``; the object after the write, or after a
        conflict the object as it is now (to decide again); None if it was deleted."""
        releases = list(releases)
        gone = {release.reservation.pod_uid for release in releases}
        kept = [r for uid, r in bandwidth.reservations.items() if uid not in gone]
        path = BANDWIDTHS.path(name=bandwidth.name)
        try:
            patched = patch_if_generation(
                self._api, path, bandwidth.generation, reservations_patch(kept)
            )
        except Conflict:
            log.debug("release_conflict", node=bandwidth.name, attempting=len(releases))
            try:
                return self._api.get(path)
            except NotFound:
                return None
        except NotFound:
            return None
        for release in releases:
            self._metrics.released.labels(release.reason.value).inc()
            log.info(
                "reservation_released",
                node=bandwidth.name,
                pod=release.pod,
                pod_uid=release.reservation.pod_uid,
                reason=release.reason.value,
            )
            self._events.record(
                ObjectRef.of(patched, KIND, API_VERSION),
                NORMAL,
                "ReservationReleased",
                f"Released the reservation of pod {release.pod} "
                f"({release.reservation.request.describe()}): {release.detail}",
            )
        return patched

    def _write_status(
        self, name: str, raw: JSON, bandwidth: NodeBandwidth, books: Books, *, node_exists: bool
    ) -> None:
        previous = raw.get("status") or {}
        desired = desired_status(
            books,
            node_exists=node_exists,
            generation=bandwidth.generation,
            previous=previous,
            now=datetime.now(UTC),
        )
        if same_status(previous, desired):
            return
        based_on = bandwidth.resource_version
        with self._index_lock:
            last = self._last_writes.get(name)
        if last is not None and last[0] == based_on and same_status(last[1], desired):
            return  # written already from this very version: the cache has not caught up
        try:
            written = self._api.patch(
                BANDWIDTHS.path(name=name, subresource="status"), {"status": desired}
            )
        except NotFound:
            return
        with self._index_lock:
            self._last_writes[name] = (based_on, desired)
        self._metrics.status_writes.inc()
        log.debug("status_written", node=name, state=desired["state"])
        news = oversubscription_news(previous, desired)
        ref = ObjectRef.of(written, KIND, API_VERSION)
        if news in ("started", "changed"):
            message = oversubscription_message(books)
            log.warning("node_oversubscribed", node=name, detail=message)
            self._events.record(
                ref,
                WARNING,
                "Oversubscribed",
                f"Node {name} is charged more bandwidth than it has: {message}",
            )
        elif news == "resolved":
            log.info("node_oversubscription_resolved", node=name)
            self._events.record(
                ref, NORMAL, "OversubscriptionResolved", f"Node {name} is within capacity again"
            )

    def _report_unhonoured(self, books: Books) -> None:
        for unhonoured in books.unhonoured:
            pod = unhonoured.pod
            message = str(unhonoured.error)
            with self._index_lock:
                if self._warned_pods.get(pod.uid) == message:
                    continue
                self._warned_pods[pod.uid] = message
            log.warning("bandwidth_annotation_invalid", node=books.node, pod=pod.key, error=message)
            self._events.record(
                ObjectRef(
                    kind="Pod",
                    api_version="v1",
                    name=pod.name,
                    uid=pod.uid,
                    namespace=pod.namespace,
                ),
                WARNING,
                "InvalidBandwidthAnnotation",
                f"{message}; the pod is charged no bandwidth on node {books.node}",
            )


def _move(index: dict[str, set[str]], key: str, old: str, new: str) -> None:
    if old == new:
        if new:
            index.setdefault(new, set()).add(key)
        return
    if old:
        members = index.get(old)
        if members is not None:
            members.discard(key)
            if not members:
                del index[old]
    if new:
        index.setdefault(new, set()).add(key)


def _describe_capacity(bandwidth: Mapping[str, Any]) -> str:
    capacity = ((bandwidth.get("spec") or {}).get("capacity")) or {}
    local = capacity.get("local") or {}
    network = capacity.get("network") or {}
    return (
        f"network {network.get('ulMbps')}/{network.get('dlMbps')} Mbps, "
        f"local {local.get('ulMbps')}/{local.get('dlMbps')} Mbps (up/down)"
    )
