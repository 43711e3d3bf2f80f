"""The scheduling loop: pop a pod, decide against the assumed view, hand off to the binder.

Decisions are made one pod at a time on one thread; reservation and binding writes run on
the binder's workers, so throughput is not tied to one request's latency. A pod no node takes
goes through the PostFilter (``scheduler.preemption``) before it is explained and parked: it
may be nominated to a node where lower-priority pods are preempted for it.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry

from bandwidth.model import API_VERSION, KIND, parse_time
from kubeio.dra import DraWatch
from kubeio.errors import ApiError, NotFound
from kubeio.events import NORMAL, WARNING, EventRecorder, ObjectRef
from kubeio.liveness import Check, Heartbeat
from kubeio.resources import (
    BANDWIDTHS,
    CSIDRIVERS,
    CSINODES,
    CSISTORAGECAPACITIES,
    NAMESPACES,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    STORAGECLASSES,
    Resource,
)
from kubeio.rest import STRATEGIC_MERGE_PATCH, KubeApi
from kubeio.watchcache import Handler, WatchCache
from scheduler.binder import Binder, LedgerFull, Outcome
from scheduler.cluster import ClusterState
from scheduler.config import SchedulerConfig
from scheduler.decider import Decider
from scheduler.explain import scheduled_message
from scheduler.metrics import DECIDE, SchedulerMetrics, unschedulable_labels
from scheduler.podfacts import PodFacts
from scheduler.preemption.budgets import Budgets
from scheduler.preemption.evaluator import Attempt, Preemption
from scheduler.preemption.executor import Preempter
from scheduler.queue import SchedulingQueue
from scheduler.verdict import LEDGER_FULL, UNSCHEDULABLE, Verdict, judge
from scheduler.volumebinder import VolumeBinder

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
            observe=self.metrics.observe_stage,
        )
        self.events = EventRecorder(api, config.scheduler_name)
        self.state = ClusterState(config, self.queue, on_invalid_ledger=self._invalid_ledger)
        self.decider = Decider(config.weights)
        self.volume_binder = VolumeBinder(
            api,
            self.state,
            self.events,
            timeout_seconds=config.volume_bind_timeout_seconds,
            still_wanted=self.queue.__contains__,
            workers=config.bind_workers,
        )
        self.binder = Binder(
            api,
            self.state,
            self._on_outcome,
            scheduler_name=config.scheduler_name,
            workers=config.bind_workers,
            on_conflict=self.metrics.reservation_conflicts.inc,
            prebind=self.volume_binder,
            on_ledger_full=self._ledger_full,
            observe=self.metrics.observe_stage,
        )
        volumes = self.state.volumes
        self.budgets = Budgets()
        self.preemption = Preemption()
        self.preempter = Preempter(
            api,
            self.events,
            self.binder.run_later,
            scheduler_name=config.scheduler_name,
            on_failed=self._preemption_failed,
        )
        self.caches = [
            self._cache(NODES, self.state.on_node),
            self._cache(BANDWIDTHS, self.state.on_bandwidth, missing_hint=CRD_HINT),
            self._cache(REPLICASETS, self.state.on_replicaset),
            self._cache(STATEFULSETS, self.state.on_statefulset),
            self._cache(NAMESPACES, self.state.on_namespace),
            self._cache(PERSISTENTVOLUMES, volumes.on_volume),
            self._cache(PERSISTENTVOLUMECLAIMS, volumes.on_claim),
            self._cache(STORAGECLASSES, volumes.on_storage_class),
            self._cache(CSINODES, volumes.on_csinode),
            self._cache(CSIDRIVERS, volumes.on_driver),
            self._cache(CSISTORAGECAPACITIES, volumes.on_capacity),
            self._cache(PODDISRUPTIONBUDGETS, self.budgets.on_pdb),
            self._cache(PODS, self.state.on_pod),
        ]
        self.dra: DraWatch | None = None
        if config.dra is not None:
            self.dra = DraWatch(api, config.dra, self._on_dra_change)
            self.caches[-1:-1] = self.dra.caches  # pods stay last: their count is logged
        self.heartbeat = Heartbeat("scheduling", stall_after=120.0)
        self._unschedulable_reason: dict[str, tuple[str, str]] = {}
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

    def liveness(self) -> list[Check]:
        """The vital loops: each watch cache, the scheduling loop, the binder's workers and
        the event recorder."""
        caches: list[Check] = [cache.heartbeat for cache in self.caches]
        return [*caches, self.heartbeat, self.binder.tasks, self.events.heartbeat]

    def start(self) -> None:
        """Start the watch caches and the event recorder (every replica, leader or not)."""
        self.events.start()
        for cache in self.caches:
            cache.start()

    def run(self, stop: threading.Event) -> None:
        """Schedule until ``stop`` is set. Caches must be started (``start``)."""
        with self.heartbeat.running():
            self._run(stop)

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set() and not self.synced:
            self.heartbeat.beat("waiting for the caches")
            stop.wait(0.1)
        log.info("caches_synced", nodes=len(self.caches[0]), pods=len(self.caches[-1]))
        # The caches are long-lived: keep the collector from rescanning them on every cycle.
        gc.freeze()
        last_flush = last_publish = time.monotonic()
        while not stop.is_set():
            self.heartbeat.beat("waiting for a pod")
            pod = self.queue.pop(timeout=0.5)
            now = popped = time.monotonic()
            if now - last_publish >= 1:
                self._publish_queue_depth()
                last_publish = now
            if now - last_flush >= 30:
                self.queue.flush_stale_unschedulable()
                last_flush = now
            if pod is not None:
                self.heartbeat.beat(f"deciding for {pod.key}")
                self._schedule_guarded(pod, popped)

    def close(self) -> None:
        self.heartbeat.retire()
        self.queue.close()
        for cache in self.caches:
            cache.stop(timeout=1)
        self.volume_binder.stop()
        self.binder.shutdown()
        self.events.stop()

    def _schedule_guarded(self, pod: PodFacts, popped: float) -> None:
        """``schedule_one``; a bug in it sends the pod back with one log line, and never ends
        the loop or leaves the pod in flight or assumed."""
        try:
            self.schedule_one(pod, popped)
        except Exception:
            log.exception("scheduling_cycle_failed", pod=pod.key)
            self.state.forget(pod.uid)
            self.queue.retry(pod.uid, unschedulable=False)

    def schedule_one(self, pod: PodFacts, popped: float | None = None) -> None:
        """Decide for ``pod`` (popped from the queue at ``popped``, monotonic) and hand a
        placement to the binder."""
        started = time.perf_counter()
        verdict = judge(self.state, self.decider, pod, assume=True)
        if verdict.decision is not None:
            self.metrics.cycle_duration.observe(time.perf_counter() - started)
        if verdict.node is not None and verdict.ctx is not None:
            handed = time.monotonic()
            if popped is not None:
                self.metrics.observe_stage(DECIDE, handed - popped)
            self.binder.submit(verdict.ctx, verdict.node, handed)
            return
        self._reject(pod, verdict, self._post_filter(verdict))

    def _post_filter(self, verdict: Verdict) -> Attempt | None:
        """Preemption, for a pod the filters refused everywhere (never for one refused before
        any filter ran, nor for a constraint this scheduler does not evaluate)."""
        if (
            verdict.decision is None
            or verdict.ctx is None
            or verdict.reason != UNSCHEDULABLE  # an unsupported constraint, found by a prefilter
            or not self._config.preemption
        ):
            return None
        with self.state.lock:
            attempt = self.preemption.attempt(
                self.state, verdict.ctx, self.decider.filters, self.budgets.current()
            )
        self.metrics.preemption_attempts.labels(attempt.result).inc()
        plan = attempt.plan
        if plan is not None:
            self.metrics.preemption_victims.observe(len(plan.victims))
            self.preempter.carry_out(plan)
            cleared = {pod.uid for pod in plan.cleared}
            if cleared:  # their room on the node is gone: let them look elsewhere now
                self.queue.cluster_changed(helps=lambda pod: pod.uid in cleared)
        elif attempt.dropped_nomination:
            self.queue.cluster_changed()  # the room it held is free for others
        return attempt

    def _preemption_failed(self, preemptor: PodFacts) -> None:
        with self.state.lock:
            self.preemption.forget(preemptor.uid)
        self.queue.cluster_changed(helps=lambda pod: pod.uid == preemptor.uid)

    def _reject(self, pod: PodFacts, verdict: Verdict, attempt: Attempt | None = None) -> None:
        counts = verdict.decision.reasons if verdict.decision is not None else None
        message = verdict.message
        nominate, clear_nomination = "", False
        if attempt is not None:
            if attempt.message:
                message = f"{message} {attempt.message}"
            nominate = attempt.plan.node if attempt.plan is not None else ""
            clear_nomination = attempt.dropped_nomination
        self.metrics.attempts.labels("unschedulable").inc()
        self.metrics.retries.labels("unschedulable").inc()
        log.info(
            "pod_unschedulable",
            pod=pod.key,
            reason=verdict.reason,
            message=message,
            reasons=dict(counts) if counts else None,
        )
        self.events.record(_pod_ref(pod), WARNING, verdict.reason, message)
        self._set_pod_scheduled_false(pod, message, nominate, clear_nomination)
        self._unschedulable_reason[pod.uid] = unschedulable_labels(verdict)
        retry_soon = attempt is not None and attempt.retry_soon
        self.queue.retry(pod.uid, unschedulable=not retry_soon)

    def _set_pod_scheduled_false(
        self, pod: PodFacts, message: str, nominate: str = "", clear_nomination: bool = False
    ) -> None:
        """``PodScheduled=False`` with ``message``, and in the same write the pod's
        ``nominatedNodeName`` set to ``nominate`` or cleared, as kube-scheduler writes them."""
        said = f"{message}\0{nominate}\0{clear_nomination}"
        if self._condition_message.get(pod.uid) == said:
            return
        self._condition_message[pod.uid] = said
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        path = PODS.path(namespace=pod.namespace, name=pod.name, subresource="status")
        status: dict[str, object] = {"conditions": [condition]}
        if nominate or clear_nomination:
            status["nominatedNodeName"] = nominate or None

        def write() -> None:
            try:
                self._api.patch(path, {"status": status}, STRATEGIC_MERGE_PATCH)
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
            with self.state.lock:
                self.preemption.forget(pod.uid)
            self.queue.done(pod.uid)
            self.metrics.attempts.labels("scheduled").inc()
            self.metrics.binding_duration.observe(float(outcome.reason or 0))
            created = parse_time(pod.created)
            if created is not None:
                self.metrics.e2e_latency.observe(max(0.0, time.time() - created.timestamp()))
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
            with self.state.lock:
                self.preemption.forget(pod.uid)
            return
        if outcome.unschedulable:
            self._reject(pod, Verdict(None, LEDGER_FULL, outcome.reason))
            return
        self.metrics.attempts.labels("error").inc()
        self.metrics.retries.labels("write_failed").inc()
        log.info("pod_retry", pod=pod.key, node=outcome.node, reason=outcome.reason)
        self.queue.retry(pod.uid, unschedulable=False)

    def _on_dra_change(self, nodes: set[str]) -> None:
        assert self.dra is not None
        for node in nodes:
            self.state.set_dra_holding(node, self.dra.holding(node))

    def _ledger_full(self, full: LedgerFull) -> None:
        ledger = self.state.ledger_of(full.node)
        ref = ObjectRef(KIND, API_VERSION, full.node, ledger.uid if ledger is not None else "")
        self.events.record(
            ref,
            WARNING,
            "LedgerFull",
            f"{full}; pods that need a new reservation here wait until some are released",
        )

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
        with self.state.lock:
            preemptors = self.preemption.preemptors()
        gone = [uid for uid in preemptors if uid not in self.queue]  # queue lock taken alone
        if gone:
            with self.state.lock:
                for uid in gone:
                    self.preemption.forget(uid)
        for queue_name, depth in self.queue.depth().items():
            self.metrics.queue_depth.labels(queue_name).set(depth)
        by_reason = Counter(self._unschedulable_reason.values())
        self.metrics.unschedulable_by_reason.clear()
        for (reason, axis), count in by_reason.items():
            self.metrics.unschedulable_by_reason.labels(reason, axis).set(count)
