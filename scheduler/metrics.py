"""The scheduler's Prometheus series, named the Prometheus way, with bounded labels.

A pod's unschedulable reason is counted under ``reason`` and ``axis`` labels that never
carry a number or a particular (:func:`unschedulable_labels`): ``insufficient bandwidth`` with
``axis="network uplink"``, not ``insufficient network uplink bandwidth (need 2000 Mbps)``;
``node(s) had untolerated taint``, not the taint. The series count stays bounded by the
filters' reasons times the four axes, whatever the pods ask.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bandwidth.budget import AXES
from scheduler.verdict import INVALID_REQUEST, LEDGER_FULL, UNSUPPORTED_CONSTRAINT, Verdict

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_CYCLE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
_VICTIM_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
_STAGE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
    10, 30,
)  # fmt: skip

WATCH = "watch"
QUEUE = "queue"
DECIDE = "decide"
RESERVE = "reserve"
BIND = "bind"
STAGES = (WATCH, QUEUE, DECIDE, RESERVE, BIND)
"""The stages of a pod's way from its watch event to its binding, in order:

- ``watch``: the pod watch handler, from the event's arrival to the pod in the active queue;
- ``queue``: waiting in the active queue until the scheduling loop pops it;
- ``decide``: from the pop to the hand-off to the binder (filter, score, assume);
- ``reserve``: from the hand-off to the reservation written in the node's Bandwidth object
  (waiting for a worker and for the node's write in flight included);
- ``bind``: from the reservation written to the binding answered (pre-bind volume writes
  included)."""

INSUFFICIENT_BANDWIDTH = "insufficient bandwidth"
NO_NODES = "no nodes"
_REFUSALS = {
    INVALID_REQUEST: "invalid request",
    UNSUPPORTED_CONSTRAINT: "unsupported constraint",
    LEDGER_FULL: "ledger full",
}
_PARTICULARS = re.compile(r" \(|: | \{|\[")
_NUMBERS = re.compile(r"\s*\d[\d.,]*")


def reason_labels(reason: str) -> tuple[str, str]:
    """``(reason, axis)`` of one node rejection: the words without numbers or particulars
    (what follows ``(``, ``{``, ``[`` or ``: ``), and the bandwidth axis apart ("" if none)."""
    for axis in AXES:
        if reason.startswith(f"insufficient {axis} bandwidth"):
            return INSUFFICIENT_BANDWIDTH, str(axis)
    general = _PARTICULARS.split(reason, maxsplit=1)[0]
    return _NUMBERS.sub("", general).strip() or "other", ""


def unschedulable_labels(verdict: Verdict) -> tuple[str, str]:
    """The labels a pod left unschedulable by ``verdict`` is counted under: its refusal, or
    the most common reason nodes rejected it for."""
    if verdict.reason in _REFUSALS:
        return _REFUSALS[verdict.reason], ""
    rejection = verdict.decision.rejection if verdict.decision is not None else None
    if rejection is not None:  # one reason for the whole pod, named without its objects
        return rejection.label or reason_labels(rejection.reason)[0], ""
    if verdict.decision is None or not verdict.decision.reasons:
        return NO_NODES, ""
    return reason_labels(verdict.decision.reasons.most_common(1)[0][0])


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
            "Pods currently unschedulable, by the most common node rejection reason (without "
            "numbers) and its bandwidth axis, or by refusal (invalid request, unsupported "
            "constraint).",
            ["reason", "axis"],
            registry=registry,
        )
        self.preemption_attempts = Counter(
            "vaclab_scheduler_preemption_attempts_total",
            "Preemption attempts for pods no node took, by result: preempted, waiting (for "
            "earlier victims to go), not_eligible (preemptionPolicy Never), no_candidate.",
            ["result"],
            registry=registry,
        )
        self.stage_duration = Histogram(
            "vaclab_scheduler_pod_stage_duration_seconds",
            "Time a pod spent in each stage between its watch event and its binding: watch, "
            "queue, decide, reserve, bind (first attempts and retries alike).",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=registry,
        )
        for stage in STAGES:
            self.stage_duration.labels(stage)
        self.preemption_victims = Histogram(
            "vaclab_scheduler_preemption_victims",
            "Pods preempted per preemption.",
            buckets=_VICTIM_BUCKETS,
            registry=registry,
        )

    def observe_stage(self, stage: str, seconds: float) -> None:
        """One pod's time in ``stage`` (one of ``STAGES``: the label stays bounded)."""
        self.stage_duration.labels(stage).observe(seconds)
