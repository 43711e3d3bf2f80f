"""The scheduling loop: pop a pod, decide against the assumed view, hand off to the binder.

Decisions are made one pod at a time on one thread; reservation and binding writes run on
the binder's workers, so throughput is not tied to one request's latency.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry

from bandwidth.model import API_VERSION, KIND
from kubeio.errors import ApiError, NotFound
from kubeio.events import NORMAL, WARNING, EventRecorder, ObjectRef
from kubeio.resources import BANDWIDTHS, NODES, PODS, REPLICASETS, STATEFULSETS, Resource
from kubeio.rest import STRATEGIC_MERGE_PATCH, KubeApi
from kubeio.watchcache import Handler, WatchCache
from scheduler.binder import Binder, Outcome
from scheduler.cluster import ClusterState
from scheduler.config import SchedulerConfig
from scheduler.decider import Decider
from scheduler.explain import scheduled_message, unschedulable_message
from scheduler.metrics import SchedulerMetrics
from scheduler.podfacts import PodFacts
from scheduler.queue import SchedulingQueue

log = structlog.get_logger("scheduler")

CRD_HINT = "install the Bandwidth CRD: kubectl apply -f crds/ (or the Helm chart)"


def _pod_ref(pod: PodFacts) -> ObjectRef:
    return ObjectRef("Pod", "v1", pod.name, pod.uid, pod.namespace)


class Scheduler:
    def __init__(
        self, api: KubeApi, config: SchedulerConfig, registry: CollectorRegistry | None = None
    ) -> None:
        self._api = api
        self._config = config
        self.metrics = SchedulerMetrics(registry or CollectorRegistry())
        self.queue = SchedulingQueue(
            initial_backoff=config.initial_backoff_seconds,
            max_backoff=config.max_backoff_seconds,
            flush_after=config.unschedulable_flush_seconds,
        )
        self.events = EventRecorder(api, config.scheduler_name)
        self.state = ClusterState(config, self.queue, on_invalid_ledger=self._invalid_ledger)
        self.decider = Decider(config.weights)
        self.binder = Binder(
            api,
            self.state,
            self._on_outcome,
            scheduler_name=config.scheduler_name,
            workers=config.bind_workers,
            on_conflict=self.metrics.reservation_conflicts.inc,
        )
        self.caches = [
            self._cache(NODES, self.state.on_node),
            self._cache(BANDWIDTHS, self.state.on_bandwidth, missing_hint=CRD_HINT),
            self._cache(REPLICASETS, self.state.on_replicaset),
            self._cache(STATEFULSETS, self.state.on_statefulset),
            self._cache(PODS, self.state.on_pod),
        ]
        self._unschedulable_reason: dict[str, str] = {}
        self._condition_message: dict[str, str] = {}
        self._warned_ledgers: set[tuple[str, str]] = set()

    def _cache(self, resource: Resource, handler: Handler, missing_hint: str = "") -> WatchCache:
        cache = WatchCache(self._api, resource, missing_hint=missing_hint)
        cache.add_handler(handler)
        return cache

    @property
    def synced(self) -> bool:
        return all(cache.synced for cache in self.caches)

    def readiness(self) -> tuple[bool, str]:
        waiting = [cache.kind for cache in self.caches if not cache.synced]
        return (not waiting, "caches not synced: " + ", ".join(waiting))

    def start(self) -> None:
        """Start the watch caches and the event recorder (every replica, leader or not)."""
        self.events.start()
        for cache in self.caches:
            cache.start()

    def run(self, stop: threading.Event) -> None:
        """Schedule until ``stop`` is set. Caches must be started (``start``)."""
        while not stop.is_set() and not self.synced:
            stop.wait(0.1)
        log.info("caches_synced", nodes=len(self.caches[0]), pods=len(self.caches[-1]))
        # The caches are long-lived: keep the collector from rescanning them on every cycle.
        gc.freeze()
        last_flush = last_publish = time.monotonic()
        while not stop.is_set():
            pod = self.queue.pop(timeout=0.5)
            now = time.monotonic()
            if now - last_publish >= 1:
                self._publish_queue_depth()
                last_publish = now
            if now - last_flush >= 30:
                self.queue.flush_stale_unschedulable()
                last_flush = now
            if pod is not None:
                self.schedule_one(pod)

    def close(self) -> None:
        self.queue.close()
        for cache in self.caches:
            cache.stop(timeout=1)
        self.binder.shutdown()
        self.events.stop()

    def schedule_one(self, pod: PodFacts) -> None:
        if pod.invalid:
            self._reject(pod, "InvalidBandwidthRequest", pod.invalid, reason_label="invalid")
            return
        if pod.unsupported:
            message = "unsupported scheduling constraint(s): " + ", ".join(pod.unsupported)
            self._reject(pod, "UnsupportedConstraint", message, reason_label="unsupported")
            return
        started = time.perf_counter()
        with self.state.lock:
            ctx = self.state.context_for(pod)
            decision = self.decider.choose(self.state, ctx)
            if decision.node is not None:
                self.state.assume(ctx, decision.node)
        self.metrics.cycle_duration.observe(time.perf_counter() - started)
        if decision.node is not None:
            self.binder.submit(ctx, decision.node)
            return
        message = unschedulable_message(decision.nodes_considered, decision.reasons)
        top = decision.reasons.most_common(1)[0][0] if decision.reasons else "no nodes"
        self._reject(pod, "FailedScheduling", message, reason_label=top, counts=decision.reasons)

    def _reject(
        self,
        pod: PodFacts,
        reason: str,
        message: str,
        *,
        reason_label: str,
        counts: Counter[str] | None = None,
    ) -> None:
        self.metrics.attempts.labels("unschedulable").inc()
        self.metrics.retries.labels("unschedulable").inc()
        log.info(
            "pod_unschedulable",
            pod=pod.key,
            reason=reason,
            message=message,
            reasons=dict(counts) if counts else None,
        )
        self.events.record(_pod_ref(pod), WARNING, reason, message)
        self._set_pod_scheduled_false(pod, message)
        self._unschedulable_reason[pod.uid] = reason_label
        self.queue.retry(pod.uid, unschedulable=True)

    def _set_pod_scheduled_false(self, pod: PodFacts, message: str) -> None:
        if self._condition_message.get(pod.uid) == message:
            return
        self._condition_message[pod.uid] = message
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        path = PODS.path(namespace=pod.namespace, name=pod.name, subresource="status")

        def write() -> None:
            try:
                self._api.patch(
                    path, {"status": {"conditions": [condition]}}, STRATEGIC_MERGE_PATCH
                )
            except NotFound:
                pass
            except ApiError as error:
                log.warning("condition_not_written", pod=pod.key, error=str(error))

        self.binder.run_later(write)

    def _on_outcome(self, outcome: Outcome) -> None:
        pod = outcome.ctx.pod
        self._unschedulable_reason.pop(pod.uid, None)
        if outcome.bound:
            self._condition_message.pop(pod.uid, None)
            self.queue.done(pod.uid)
            self.metrics.attempts.labels("scheduled").inc()
            self.metrics.binding_duration.observe(float(outcome.reason or 0))
            created = _parse_time(pod.created)
            if created is not None:
                self.metrics.e2e_latency.observe(max(0.0, time.time() - created))
            message = scheduled_message(pod.namespace, pod.name, outcome.node, pod.bandwidth)
            self.events.record(_pod_ref(pod), NORMAL, "Scheduled", message)
            log.info(
                "pod_scheduled",
                pod=pod.key,
                node=outcome.node,
                ul_mbps=pod.bandwidth.ul_mbps,
                dl_mbps=pod.bandwidth.dl_mbps,
                link_local=pod.bandwidth.link_local,
            )
            return
        if outcome.pod_gone:
            self.queue.done(pod.uid)
            return
        self.metrics.attempts.labels("error").inc()
        self.metrics.retries.labels("write_failed").inc()
        log.info("pod_retry", pod=pod.key, node=outcome.node, reason=outcome.reason)
        self.queue.retry(pod.uid, unschedulable=False)

    def _invalid_ledger(self, node: str, problem: str) -> None:
        if (node, problem) in self._warned_ledgers:
            return
        self._warned_ledgers.add((node, problem))
        log.warning("bandwidth_object_invalid", node=node, problem=problem)
        self.events.record(
            ObjectRef(KIND, API_VERSION, node, ""), WARNING, "InvalidBandwidthObject", problem
        )

    def _publish_queue_depth(self) -> None:
        # Forget what was said about pods that left the queue without being bound (deleted).
        for remembered in (self._unschedulable_reason, self._condition_message):
            for uid in [uid for uid in remembered if uid not in self.queue]:
                remembered.pop(uid, None)
        for queue_name, depth in self.queue.depth().items():
            self.metrics.queue_depth.labels(queue_name).set(depth)
        by_reason = Counter(self._unschedulable_reason.values())
        self.metrics.unschedulable_by_reason.clear()
        for reason, count in by_reason.items():
            self.metrics.unschedulable_by_reason.labels(reason).set(count)


def _parse_time(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
