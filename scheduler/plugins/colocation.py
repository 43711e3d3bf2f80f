"""Co-locate siblings: prefer the node already holding the most pods of the same workload,
and, for the pods that come first, the node where the most siblings can still follow."""

from __future__ import annotations

from bandwidth.ledger import copies_that_fit
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
        capacity = node.capacity
        if capacity is not None and not pod.bandwidth.is_zero():
            used = node.bandwidth_used + pod.bandwidth.charge()
            room = min(room, copies_that_fit(capacity, used, pod.bandwidth, to_come))
        return float(room)
