"""cpu, memory, pods, ephemeral storage and extended resources must fit in allocatable.

For preemption a shortfall is resolvable unless the pod asks for more than the node's whole
allocatable (kube's ``Unresolvable`` insufficient resource).
"""

from __future__ import annotations

import numpy as np

from scheduler.nodeinfo import NodeInfo
from scheduler.nodetable import SAFE, Mask, NodeTable, Rows
from scheduler.plugins.framework import PodContext, Reasons
from scheduler.resources import PODS

NAME = "NodeResourcesFit"


class ResourceFit:
    name = NAME

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        allocatable = node.facts.allocatable if node.facts else {}
        reasons = []
        for resource, amount in ctx.pod.requests.items():
            if amount <= 0:
                continue
            if node.requested.get(resource, 0) + amount > allocatable.get(resource, 0):
                reasons.append(_insufficient(resource))
        return tuple(reasons)

    def resolvable(self, ctx: PodContext, node: NodeInfo) -> bool:
        allocatable = node.facts.allocatable if node.facts else {}
        return all(
            amount <= allocatable.get(resource, 0)
            for resource, amount in ctx.pod.requests.items()
            if amount > 0
        )

    def filter_rows(self, ctx: PodContext, table: NodeTable) -> Mask | None:
        fits = np.ones(table.size, np.bool_)
        for resource, amount in ctx.pod.requests.items():
            if amount > 0:
                if amount >= SAFE:
                    return None
                fits &= table.requested(resource) + amount <= table.allocatable(resource)
        return None if table.unsafe else fits

    def explain_rows(self, ctx: PodContext, table: NodeTable, rows: Rows) -> list[tuple[str, Mask]]:
        found = []
        for resource, amount in ctx.pod.requests.items():
            if amount > 0:
                short = table.requested(resource)[rows] + amount > table.allocatable(resource)[rows]
                if short.any():
                    found.append((_insufficient(resource), short))
        return found


def _insufficient(resource: str) -> str:
    return "Too many pods" if resource == PODS else f"Insufficient {resource}"
