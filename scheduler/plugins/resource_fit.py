"""cpu, memory, pods, ephemeral storage and extended resources must fit in allocatable."""

from __future__ import annotations

from scheduler.nodeinfo import NodeInfo
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
                reasons.append("Too many pods" if resource == PODS else f"Insufficient {resource}")
        return tuple(reasons)
