"""Scheduler settings, from flags or a YAML config file with the same names."""

from __future__ import annotations

from dataclasses import dataclass, field

from bandwidth.dra import DraSharing
from bandwidth.request import RequestPolicy

DEFAULT_SCHEDULER_NAME = "vaclab-scheduler"


def _weight(default: int, meaning: str) -> int:
    return field(default=default, metadata={"help": meaning})


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    """Relative weights of the score plugins; each plugin scores 0..100 before weighting.
    Each field's ``help`` metadata is its flag's help text (``--weight-<name>``)."""

    colocation: int = _weight(
        10, "prefer nodes already holding siblings of the pod's StatefulSet or Deployment"
    )
    sibling_room: int = _weight(3, "prefer nodes with room for the siblings still to come")
    bandwidth_headroom: int = _weight(
        1, "prefer nodes left with the larger share of free bandwidth"
    )
    node_affinity: int = _weight(2, "prefer nodes matching the pod's preferred node affinity")
    taint_toleration: int = _weight(
        1, "avoid nodes with PreferNoSchedule taints the pod does not tolerate"
    )
    # Below colocation, so that siblings still pack unless the user says otherwise.
    pod_affinity: int = _weight(
        2, "prefer nodes matching the pod's preferred inter-pod affinity and anti-affinity"
    )
    topology_spread: int = _weight(
        2, "prefer nodes in the emptier domains of ScheduleAnyway topology spread constraints"
    )


def weight_help(name: str) -> str:
    """What ``--weight-<name>`` prefers, from the field's metadata."""
    meaning = ScoreWeights.__dataclass_fields__[name].metadata.get("help")
    return str(meaning or f"weight of the {name.replace('_', ' ')} score")


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    request_policy: RequestPolicy = RequestPolicy()
    weights: ScoreWeights = field(default_factory=ScoreWeights)
    bind_workers: int = 64
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 10.0
    unschedulable_flush_seconds: float = 300.0
    dra: DraSharing | None = None
    """The DRA driver whose claims hold bandwidth too (``--dra-driver``); None: off."""
    volume_bind_timeout_seconds: float = 600.0
    """How long a pod's volumes may take to be bound (or provisioned) before it is retried."""
    preemption: bool = True
    """Preempt lower-priority pods for a pod no node takes (``--no-preemption``: never)."""
    percentage_of_nodes_to_score: int | None = None
    """kube-scheduler's ``percentageOfNodesToScore``: a decision stops examining nodes once
    this share of the cluster (at least 100 nodes) is feasible; 0 is kube's adaptive default
    (50% falling to 5% as the cluster grows), 100 every node. None (the default): every node
    when all the pod's filters run over the node arrays (``scheduler.nodetable``), where the
    whole cluster costs less than a sample used to; kube's adaptive share when one runs per
    node (inter-pod affinity, topology spread, host ports, volumes: ``decide.decide_rows``)."""
