"""Bandwidth headroom on both datapaths, uplink and downlink, must cover the request.

Headroom is ``spec.capacity`` minus everything charged on the node (ledger, in-flight and
observed pods: ``NodeInfo.bandwidth_used``) — never the asynchronously written status.
The score prefers nodes left with the larger share of free bandwidth.
"""

from __future__ import annotations

from bandwidth.budget import Axis, Usage
from bandwidth.ledger import free_fraction, shortfalls
from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FITS, PodContext, Reasons

NAME = "BandwidthFit"
NO_LEDGER = "node(s) had no Bandwidth object yet"


def insufficient(axis: Axis, need_mbps: int) -> str:
    return f"insufficient {axis} bandwidth (need {need_mbps} Mbps)"


class BandwidthFit:
    name = NAME

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        request = ctx.pod.bandwidth
        capacity = node.capacity
        if capacity is None:
            return FITS if request.is_zero() else (node.bandwidth_problem or NO_LEDGER,)
        if request.is_zero():
            return FITS
        charge = request.charge()
        return tuple(
            insufficient(axis, charge.on(axis))
            for axis in shortfalls(capacity, used_by_others(ctx, node), request)
        )

    def score(self, ctx: PodContext, node: NodeInfo) -> float:
        capacity = node.capacity
        if capacity is None:
            return 0.0
        return free_fraction(capacity, used_by_others(ctx, node) + ctx.pod.bandwidth.charge())


def used_by_others(ctx: PodContext, node: NodeInfo) -> Usage:
    """What the node has charged, less the pod's own entry (a reservation made before a crash)."""
    own = node.charged_requests().get(ctx.pod.uid) if node.holds(ctx.pod.uid) else None
    return node.bandwidth_used - own.charge() if own is not None else node.bandwidth_used
