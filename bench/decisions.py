"""Time per scheduling decision with no API at all: the scheduler's own ``Decider`` against a
cluster state fed the same events its watch caches would deliver.

CPU time of this process is measured (``time.process_time``), so a busy machine skews the
figures less than wall time would.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

from bandwidth.request import RequestPolicy
from bench.workload import ledger_object, node_capacity, node_object, pod_object, workload
from scheduler.cluster import ClusterState
from scheduler.config import SchedulerConfig
from scheduler.decider import Decider
from scheduler.podfacts import read_pod
from scheduler.queue import SchedulingQueue

SCHEDULER = "vaclab-scheduler"


@dataclass(frozen=True, slots=True)
class DecisionTiming:
    nodes: int
    pods_per_node: int
    decisions: int
    mean_ms: float
    p99_ms: float
    nodes_examined_mean: float


def loaded_state(nodes: int, pods_per_node: int) -> ClusterState:
    config = SchedulerConfig(scheduler_name=SCHEDULER)
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
            namespace="bench",
            uid=f"bound-{index}",
            node_name=names[index % nodes],
        )
        state.on_pod("ADDED", None, body)
    return state


def time_decisions(nodes: int, pods_per_node: int, decisions: int = 200) -> DecisionTiming:
    state = loaded_state(nodes, pods_per_node)
    decider = Decider(state.config.weights)
    policy = RequestPolicy()
    pending = [
        read_pod(
            pod_object(spec, scheduler_name=SCHEDULER, namespace="new", uid=f"new-{i}"), policy
        )
        for i, spec in enumerate(workload(decisions, seed=12))
    ]
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
    )
