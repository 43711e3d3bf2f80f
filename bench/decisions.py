"""Time per scheduling decision with no API at all: the scheduler's own ``Decider`` against a
cluster state fed the same events its watch caches would deliver.

CPU time of this process is measured (``time.process_time``), so a busy machine skews the
figures less than wall time would.

With ``terms``, every pod of a workload (placed and pending alike, one namespace) carries the
inter-pod terms people write, a third of the workloads each: required anti-affinity on the
hostname, a zone spread (``DoNotSchedule``, maxSkew 1) with a hostname spread
(``ScheduleAnyway``), or preferred affinity to its own zone. Bare pods carry none.
"""

from __future__ import annotations

import gc
import time
import zlib
from dataclasses import dataclass
from typing import Any

from bandwidth.request import RequestPolicy
from bench.workload import (
    PodSpec,
    ledger_object,
    node_capacity,
    node_object,
    pod_object,
    workload,
)
from scheduler.cluster import ClusterState
from scheduler.config import SchedulerConfig
from scheduler.decider import Decider
from scheduler.podfacts import read_pod
from scheduler.queue import SchedulingQueue

SCHEDULER = "vaclab-scheduler"
NAMESPACE = "bench"
ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"


@dataclass(frozen=True, slots=True)
class DecisionTiming:
    nodes: int
    pods_per_node: int
    decisions: int
    mean_ms: float
    p99_ms: float
    nodes_examined_mean: float
    terms: bool = False
    """Pods of workloads carry inter-pod affinity and spread terms."""
    percentage: int | None = None
    """The scheduler's ``percentage_of_nodes_to_score`` (0: kube's adaptive sample; None, its
    default: every node unless a filter runs per node)."""


def with_terms(body: dict[str, Any], spec: PodSpec) -> dict[str, Any]:
    """The pod with the terms of its workload's third (see the module docstring)."""
    if not spec.group:
        return body
    own = {"matchLabels": {"app": spec.group}}
    kind = zlib.crc32(spec.group.encode()) % 3
    if kind == 0:
        body["spec"]["affinity"] = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": own, "topologyKey": HOSTNAME}
                ]
            }
        }
    elif kind == 1:
        body["spec"]["topologySpreadConstraints"] = [
            {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule"}
            | {"labelSelector": own},
            {"maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": "ScheduleAnyway"}
            | {"labelSelector": own},
        ]
    else:
        body["spec"]["affinity"] = {
            "podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 50, "podAffinityTerm": {"labelSelector": own, "topologyKey": ZONE}}
                ]
            }
        }
    return body


def loaded_state(
    nodes: int, pods_per_node: int, terms: bool = False, percentage: int | None = None
) -> ClusterState:
    config = SchedulerConfig(scheduler_name=SCHEDULER, percentage_of_nodes_to_score=percentage)
    state = ClusterState(config, SchedulingQueue())
    names = [f"node-{i:05d}" for i in range(nodes)]
    for index, name in enumerate(names):
        state.on_node("ADDED", None, node_object(name, f"zone-{index % 3}"))
        state.on_bandwidth("ADDED", None, ledger_object(name, node_capacity(index)))
    specs = workload(nodes * pods_per_node, seed=11)
    for index, spec in enumerate(specs):
        body = pod_object(
            spec,
            scheduler_name=SCHEDULER,
            namespace=NAMESPACE,
            uid=f"bound-{index}",
            node_name=names[index % nodes],
        )
        state.on_pod("ADDED", None, with_terms(body, spec) if terms else body)
    return state


def time_decisions(
    nodes: int,
    pods_per_node: int,
    decisions: int = 200,
    *,
    terms: bool = False,
    percentage: int | None = None,
) -> DecisionTiming:
    """``terms``: pending pods join the placed workloads' namespace and carry their terms.
    ``percentage``: of the nodes to score (``SchedulerConfig.percentage_of_nodes_to_score``)."""
    state = loaded_state(nodes, pods_per_node, terms, percentage)
    decider = Decider(state.config.weights)
    policy = RequestPolicy()
    pending = []
    for i, spec in enumerate(workload(decisions, seed=12)):
        body = pod_object(
            spec,
            scheduler_name=SCHEDULER,
            namespace=NAMESPACE if terms else "new",
            uid=f"new-{i}",
        )
        pending.append(read_pod(with_terms(body, spec) if terms else body, policy))
    gc.collect()
    gc.freeze()
    samples: list[float] = []
    examined = 0
    for pod in pending:
        started = time.process_time()
        with state.lock:
            ctx = state.context_for(pod)
            decision = decider.choose(state, ctx)
            if decision.node is not None:
                state.assume(ctx, decision.node)
        samples.append(time.process_time() - started)
        examined += decision.nodes_considered
    gc.unfreeze()
    samples.sort()
    return DecisionTiming(
        nodes=nodes,
        pods_per_node=pods_per_node,
        decisions=decisions,
        mean_ms=1000 * sum(samples) / len(samples),
        p99_ms=1000 * samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        nodes_examined_mean=examined / len(samples),
        terms=terms,
        percentage=percentage,
    )
