"""The accounting controller: keeps every node's Bandwidth object true to the cluster.

Reads come from four watch caches (nodes, pods, bandwidths, replicasets; with DRA sharing two
more, ``kubeio.dra``), never from a LIST per reconcile. Watch handlers only update the indexes
(``accounting.indexes``) and queue node names; workers take a node name from the queue and
reconcile it, level-based: the reconcile looks at the whole state of the node, not at the
event that queued it.

The parts, one responsibility each::

    controller  caches, the work queue, workers, resync, and the reconcile below
    indexes     pods by node and by ReplicaSet, ledgers by pod UID (from the watch handlers)
    lifecycle   a Bandwidth created with its node (capacity, rebuilt ledger), deleted with it
    release     stale reservations released: books, confirmation (a GET, or the fence of
                kubeio.fencing), guarded write, retried on conflict
    reporting   status written when it changed, Events, warnings about pods and ledgers
    books, status, capacity, pods: the pure decisions they call

``_queue`` (``kubeio.workqueue.WorkQueue``) holds node names: de-duplicated, never one name in
two workers, failures retried with exponential back-off, every name re-queued each resync
period. A pod or Bandwidth event queues its nodes after a short batching delay
(``EVENT_BATCH_SECONDS``): placing one pod makes three or four events on its node (the
reservation, the binding, our own status write), and siblings arrive together, so one
reconcile reads them all instead of one reconcile, with the node's whole books, per event.
Each part guards its own memory with its own lock, never held while calling another part or
the API.

Reconcile of one node name, in order:

1. Node out of scope (``--node-selector``): nothing.
2. Node gone: a Bandwidth this controller created (owner reference to the Node) is deleted
   once a GET confirms the node is gone; a Bandwidth someone else created is kept with state
   NodeNotFound (only without a node selector: otherwise it is not known to be ours).
3. No Bandwidth yet: create it (``lifecycle``); one created for an earlier node of that name
   is deleted first.
4. Release what is stale (``release``).
5. Report: status, events, metrics (``reporting``).

``start()`` fills the caches (a standby replica keeps them warm); ``run(stop)`` is the write
loop, started when leadership is acquired, returning when ``stop`` is set.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry

from accounting.indexes import Indexes
from accounting.lifecycle import CACHE_LAG_RETRY_SECONDS, Lifecycle
from accounting.metrics import AccountingMetrics
from accounting.objects import (
    controller_of,
    key_of,
    metadata_of,
    name_of,
    node_name_of_pod,
    node_owner_uid,
)
from accounting.pods import Workload, slim_metadata_only, slim_pod
from accounting.release import ReleaseContention, Releaser
from accounting.reporting import Reporter
from accounting.settings import AccountingSettings
from bandwidth.dra import DraHolding
from kubeio.dra import DraWatch
from kubeio.errors import ApiError
from kubeio.events import EventRecorder
from kubeio.liveness import Check, Heartbeat
from kubeio.pods import PodBasics, read_pod_basics
from kubeio.resources import BANDWIDTHS, NODES, PODS, REPLICASETS
from kubeio.rest import JSON, KubeApi
from kubeio.retry import longest_wait
from kubeio.watchcache import DELETED, WatchCache
from kubeio.workqueue import WorkQueue

log = structlog.get_logger("accounting.controller")

CRD_HINT = "install crds/bandwidths.networking.vaclab.org.yaml (kubectl apply -f crds/)"

# Reconcile a little after a grace period ends, so that ``now >= deadline`` holds.
_REVIEW_MARGIN_SECONDS = 0.05
EVENT_BATCH_SECONDS = 0.05
"""How long a node queued by a pod or Bandwidth event waits for that node's other events."""


class Controller:
    """The accounting controller of one process; see the module docstring.

    Shaped as the daemons' worker: ``start`` (caches, on every replica), ``readiness``,
    ``run(stop)`` (writes, only while leading) and ``close`` (once, at the end).
    """

    def __init__(
        self,
        api: KubeApi,
        settings: AccountingSettings,
        *,
        registry: CollectorRegistry,
        events: EventRecorder | None = None,
    ) -> None:
        self._settings = settings
        self._events = events or EventRecorder(api, settings.component)
        self._metrics = AccountingMetrics(registry)
        keys = settings.annotation_keys
        kept_annotations = (keys.egress, keys.ingress, keys.link_local)
        self._nodes = WatchCache(api, NODES, transform=slim_metadata_only)
        self._pods = WatchCache(api, PODS, transform=lambda pod: slim_pod(pod, kept_annotations))
        self._bandwidths = WatchCache(api, BANDWIDTHS, missing_hint=CRD_HINT)
        self._replicasets = WatchCache(api, REPLICASETS, transform=slim_metadata_only)
        self._queue: WorkQueue[str] = WorkQueue(base_delay=0.1, max_delay=120.0)
        self._dra: DraWatch | None = None
        if settings.dra is not None:  # what DRA claims hold: charged on their node too
            self._dra = DraWatch(api, settings.dra, self._queue_nodes)
        self._caches: tuple[WatchCache, ...] = (
            self._nodes,
            self._pods,
            self._bandwidths,
            self._replicasets,
            *(self._dra.caches if self._dra is not None else ()),
        )
        self._indexes = Indexes()
        self._lifecycle = Lifecycle(api, settings, self._events, self._metrics)
        self._releaser = Releaser(api, settings, self._events, self._metrics, self)
        self._reporter = Reporter(
            api,
            self._events,
            self._metrics,
            status_interval_seconds=settings.status_interval_seconds,
        )
        # One reconcile takes a few requests, each at most 30 s, times MAX_WRITE_ATTEMPTS.
        self._worker_beats = [
            Heartbeat(f"reconcile-{i}", stall_after=600.0) for i in range(max(1, settings.workers))
        ]
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

    def liveness(self) -> list[Check]:
        """The vital loops: each watch cache, each reconcile worker, the event recorder."""
        caches: list[Check] = [cache.heartbeat for cache in self._caches]
        return [*caches, *self._worker_beats, self._events.heartbeat]

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
            threading.Thread(target=self._work, args=(stop, beat), name=beat.name, daemon=True)
            for beat in self._worker_beats
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
        for beat in self._worker_beats:
            beat.retire()
        self._queue.shut_down()
        for cache in self._caches:
            cache.stop(timeout=0.5)
        self._events.stop()

    def resync(self) -> None:
        """Queue every node and every Bandwidth: a level-based look at the whole cluster."""
        names = {name_of(node) for node in self._nodes.items()}
        names.update(name_of(bandwidth) for bandwidth in self._bandwidths.items())
        log.debug("resync", names=len(names))
        for name in names:
            self._queue.add(name)

    def _work(self, stop: threading.Event, beat: Heartbeat) -> None:
        with beat.running():
            while not stop.is_set():
                beat.beat("waiting for a node")
                name = self._queue.get(timeout=0.5)
                if name is None:
                    if self._queue.shutting_down:
                        return
                    continue
                beat.beat(f"reconciling {name}")
                self._reconcile_one(name)

    def _reconcile_one(self, name: str) -> None:
        started = time.perf_counter()
        try:
            review_in = self.reconcile(name)
        except (ApiError, ReleaseContention) as error:
            self._metrics.reconcile_errors.inc()
            cap = longest_wait(error) if isinstance(error, ApiError) else None
            delay = self._queue.add_rate_limited(name, cap)
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
        self._queue.add(name_of(new or old))
        if kind == DELETED:
            self._lifecycle.node_gone(name_of(old))

    def _on_pod(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        for name in self._indexes.pod_changed(old, new):
            self._queue.add_after(name, EVENT_BATCH_SECONDS)
        if kind == DELETED:
            self._reporter.pod_gone(str(metadata_of(old).get("uid", "")))

    def _on_bandwidth(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        name = name_of(new or old)
        self._releaser.forget(self._indexes.bandwidth_changed(name, old, new))
        if kind == DELETED:
            self._reporter.bandwidth_gone(name)
        self._queue.add_after(name, EVENT_BATCH_SECONDS)

    def _queue_nodes(self, names: set[str]) -> None:
        for name in names:
            self._queue.add(name)

    def _on_replicaset(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        if controller_of(old) == controller_of(new):
            return
        for pod_key in self._indexes.pods_of_replicaset(key_of(new or old)):
            node = node_name_of_pod(self._pods.get(pod_key))
            if node:
                self._queue.add(node)

    # ------------------------------------------- what the books read (release.CacheView)
    def pods_on(self, node: str) -> list[PodBasics]:
        policy = self._settings.request_policy
        pods = map(self._pods.get, self._indexes.pods_on(node))
        return [read_pod_basics(pod, policy) for pod in pods if pod is not None]

    def pod_named(self, namespace: str, name: str) -> PodBasics | None:
        pod = self._pods.get(f"{namespace}/{name}")
        return read_pod_basics(pod, self._settings.request_policy) if pod is not None else None

    def replicaset_owner(self, namespace: str, name: str) -> Workload | None:
        return controller_of(self._replicasets.get(f"{namespace}/{name}"))

    def dra_holding(self, node: str) -> DraHolding | None:
        return self._dra.holding(node) if self._dra is not None else None

    # -------------------------------------------------------------------- reconcile
    def reconcile(self, name: str) -> float | None:
        """Bring node ``name``'s Bandwidth in line; returns seconds until it wants a look
        again (an unbound reservation's grace ending, a lagging cache), or None."""
        node = self._nodes.get(name)
        bandwidth = self._bandwidths.get(name)
        if node is not None and not self._settings.node_selector.matches(
            metadata_of(node).get("labels")
        ):
            self._metrics.forget_node(name)
            return None
        if node is None:
            return self._reconcile_without_node(name, bandwidth)
        if bandwidth is None:
            bandwidth = self._lifecycle.create(name, node)
            if bandwidth is None:
                return None
        elif node_owner_uid(bandwidth) not in ("", metadata_of(node).get("uid")):
            # Created for an earlier node of that name: start afresh, as the garbage collector
            # would, but only once a GET shows the cache is not merely behind.
            return self._lifecycle.delete_if_node_gone(name, bandwidth)
        if metadata_of(bandwidth).get("deletionTimestamp"):
            return None
        return self._settle(name, bandwidth, node_exists=True)

    def _reconcile_without_node(self, name: str, bandwidth: JSON | None) -> float | None:
        if bandwidth is None:
            self._metrics.forget_node(name)
            return None
        if node_owner_uid(bandwidth):
            return self._lifecycle.delete_if_node_gone(name, bandwidth)
        if not self._settings.node_selector.is_empty():
            return None  # made by someone else for a node we cannot see: not ours to judge
        if self._lifecycle.read_node(name) is not None:
            return CACHE_LAG_RETRY_SECONDS
        return self._settle(name, bandwidth, node_exists=False)

    def _settle(self, name: str, raw: JSON, *, node_exists: bool) -> float | None:
        """Release what is stale, then report; seconds until the next unbound reservation's
        grace ends, if any."""
        settled = self._releaser.settle(name, raw)
        if settled is None:
            return None
        status_due = self._reporter.report(
            settled.raw, settled.bandwidth, settled.books, node_exists=node_exists
        )
        review_at = settled.books.review_at
        if review_at is None:
            return status_due
        wait = (review_at - datetime.now(UTC)).total_seconds()  # at most 10^4 years
        grace_due = max(0.0, wait) + _REVIEW_MARGIN_SECONDS
        return grace_due if status_due is None else min(grace_due, status_due)
