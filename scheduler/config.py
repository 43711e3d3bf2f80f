"""Scheduler settings, from flags or a YAML config file with the same names."""

from __future__ import annotations

from dataclasses import dataclass, field

from bandwidth.request import RequestPolicy

DEFAULT_SCHEDULER_NAME = "vaclab-scheduler"


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    """Relative weights of the score plugins; each plugin scores 0..100 before weighting."""

    colocation: int = 10
    sibling_room: int = 3
    bandwidth_headroom: int = 1
    node_affinity: int = 2
    taint_toleration: int = 1


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    request_policy: RequestPolicy = RequestPolicy()
    weights: ScoreWeights = field(default_factory=ScoreWeights)
    bind_workers: int = 64
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 10.0
    unschedulable_flush_seconds: float = 300.0
