"""The scheduler's Prometheus series, named the Prometheus way."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_CYCLE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class SchedulerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter(
            "vaclab_scheduler_schedule_attempts_total",
            "Scheduling attempts by result: scheduled, unschedulable or error.",
            ["result"],
            registry=registry,
        )
        self.e2e_latency = Histogram(
            "vaclab_scheduler_pod_scheduling_duration_seconds",
            "From pod creation to a successful binding.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.cycle_duration = Histogram(
            "vaclab_scheduler_scheduling_cycle_duration_seconds",
            "Time to decide one pod: filter and score every node.",
            buckets=_CYCLE_BUCKETS,
            registry=registry,
        )
        self.binding_duration = Histogram(
            "vaclab_scheduler_binding_duration_seconds",
            "Time of the pods/binding request, retries included.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "vaclab_scheduler_pending_pods",
            "Pods waiting, by queue: active, backoff, unschedulable, in-flight.",
            ["queue"],
            registry=registry,
        )
        self.reservation_conflicts = Counter(
            "vaclab_scheduler_reservation_conflicts_total",
            "Reservation writes refused with 409 Conflict (someone wrote the CR first).",
            registry=registry,
        )
        self.retries = Counter(
            "vaclab_scheduler_pod_retries_total",
            "Pods sent back to the queue after a failed attempt, by reason.",
            ["reason"],
            registry=registry,
        )
        self.unschedulable_by_reason = Gauge(
            "vaclab_scheduler_unschedulable_pods",
            "Pods currently unschedulable, by the most common node rejection reason.",
            ["reason"],
            registry=registry,
        )
