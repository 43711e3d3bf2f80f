"""Co-locate siblings: prefer the node already holding the most pods of the same workload,
and, for the pods that come first, the node where the most siblings can still follow."""

from __future__ import annotations

from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import PodContext

COLOCATION = "SiblingColocation"
ROOM = "SiblingRoom"


class SiblingColocation:
    name = COLOCATION

    def score(self, ctx: PodContext, node: NodeInfo) -> float:
        if ctx.workload is None:
            return 0.0
        return float(node.siblings.get(ctx.workload, 0))


class SiblingRoom:
    """How many of the siblings still to come would fit beside this pod on the node."""

    name = ROOM

    def score(self, ctx: PodContext, node: NodeInfo) -> float:
        to_come = ctx.siblings_to_come
        if ctx.workload is None or to_come == 0:
            return 0.0
        pod = ctx.pod
        room = to_come
        allocatable = node.facts.allocatable if node.facts else {}
        for resource, amount in pod.requests.items():
            if amount > 0:
                left = allocatable.get(resource, 0) - node.requested.get(resource, 0) - amount
                room = min(room, max(0, left) // amount)
        free = node.free_bandwidth
        if free is not None:
            need = pod.charge
            for axis in range(4):
                if need[axis] > 0:
                    room = min(room, max(0, free[axis] - need[axis]) // need[axis])
        return float(room)
