"""A ``ClusterState`` fed the watch events its caches would deliver, from compact
descriptions of nodes, namespaces and pods: the plugins see exactly what the scheduler sees."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from bandwidth.request import RequestPolicy
from kubeio.watchcache import ADDED
from scheduler.cluster import ClusterState
from scheduler.config import SchedulerConfig, ScoreWeights
from scheduler.decide import Decision, decide, filter_node
from scheduler.plugins.framework import PodContext
from scheduler.plugins.registry import default_filters, default_scorers
from scheduler.podfacts import read_pod
from scheduler.queue import SchedulingQueue

JSON = dict[str, Any]
_uids = itertools.count()


def node_json(
    name: str, labels: dict[str, str] | None = None, taints: list[JSON] | None = None
) -> JSON:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or []},
        "status": {
            "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def pod_json(
    name: str,
    *,
    namespace: str = "ns",
    labels: dict[str, str] | None = None,
    node: str = "",
    affinity: JSON | None = None,
    spread: list[JSON] | None = None,
    ports: list[JSON] | None = None,
    deleting: bool = False,
    **spec: Any,
) -> JSON:
    metadata: JSON = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{name}-{next(_uids)}",
        "labels": labels or {},
    }
    if deleting:
        metadata["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    body: JSON = {
        "metadata": metadata,
        "spec": {
            "containers": [{"name": "c", "ports": ports or []}],
            **spec,
        },
        "status": {"phase": "Running" if node else "Pending"},
    }
    if node:
        body["spec"]["nodeName"] = node
    if affinity:
        body["spec"]["affinity"] = affinity
    if spread:
        body["spec"]["topologySpreadConstraints"] = spread
    return body


class Cluster:
    def __init__(self, weights: ScoreWeights | None = None) -> None:
        self.state = ClusterState(
            SchedulerConfig(weights=weights or ScoreWeights()), SchedulingQueue()
        )
        self.filters = default_filters()
        self.scorers = default_scorers(self.state.config.weights)

    def node(self, name: str, **labels: str) -> Cluster:
        self.state.on_node(ADDED, None, node_json(name, labels))
        return self

    def tainted_node(self, name: str, taint: JSON, **labels: str) -> Cluster:
        self.state.on_node(ADDED, None, node_json(name, labels, [taint]))
        return self

    def namespace(self, name: str, **labels: str) -> Cluster:
        self.state.on_namespace(ADDED, None, {"metadata": {"name": name, "labels": labels}})
        return self

    def pod(self, name: str, node: str, **kwargs: Any) -> Cluster:
        self.state.on_pod(ADDED, None, pod_json(name, node=node, **kwargs))
        return self

    def context(self, body: JSON) -> PodContext:
        return self.state.context_for(read_pod(body, RequestPolicy()))

    def verdicts(self, body: JSON) -> dict[str, tuple[str, ...]]:
        """Each node's reasons for refusing the pod (empty: it fits)."""
        ctx = self.context(body)
        return {
            name: filter_node(ctx, info, self.filters)
            for name, info in sorted(self.state.nodes.items())
        }

    def feasible(self, body: JSON) -> set[str]:
        return {name for name, reasons in self.verdicts(body).items() if not reasons}

    def reasons(self, body: JSON) -> Counter[str]:
        return Counter(r for reasons in self.verdicts(body).values() for r in reasons)

    def decide(self, body: JSON) -> Decision:
        ctx = self.context(body)
        nodes = [self.state.nodes[n] for n in sorted(self.state.nodes)]
        return decide(ctx, nodes, self.filters, self.scorers, keep_scores=len(nodes))

    def place(self, body: JSON) -> str | None:
        """Decide and assume, as the scheduling loop does: the next pod sees this one."""
        ctx = self.context(body)
        nodes = [self.state.nodes[n] for n in sorted(self.state.nodes)]
        decision = decide(ctx, nodes, self.filters, self.scorers)
        if decision.node is not None:
            self.state.assume(ctx, decision.node)
        return decision.node
