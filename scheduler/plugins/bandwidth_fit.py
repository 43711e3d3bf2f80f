"""Bandwidth headroom on both datapaths, uplink and downlink, must cover the request.

Headroom is ``spec.capacity`` minus everything charged on the node (ledger, in-flight and
observed pods: ``NodeInfo.bandwidth_used``) — never the asynchronously written status.
The score prefers nodes left with the larger share of free bandwidth.
"""

from __future__ import annotations

import functools

from bandwidth.budget import AXES, Axis
from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FITS, PodContext, Reasons

NAME = "BandwidthFit"
NO_LEDGER = "node(s) had no Bandwidth object yet"


@functools.lru_cache(maxsize=1024)
def insufficient(axis: Axis, need_mbps: int) -> str:
    return f"insufficient {axis} bandwidth (need {need_mbps} Mbps)"


class BandwidthFit:
    name = NAME

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        pod = ctx.pod
        free = node.free_bandwidth
        if free is None:
            return FITS if pod.bandwidth.is_zero() else (node.bandwidth_problem or NO_LEDGER,)
        need = pod.charge
        if need[0] <= free[0] and need[1] <= free[1] and need[2] <= free[2] and need[3] <= free[3]:
            return FITS
        if node.holds(pod.uid):  # its own earlier reservation is part of what is charged
            free = (free[0] + need[0], free[1] + need[1], free[2] + need[2], free[3] + need[3])
        return tuple(insufficient(AXES[i], need[i]) for i in range(4) if need[i] > free[i])

    def score(self, ctx: PodContext, node: NodeInfo) -> float:
        """Mean share of each axis left free after placing the pod (0..1)."""
        capacity = node.capacity_vector
        free = node.free_bandwidth
        if capacity is None or free is None:
            return 0.0
        need = ctx.pod.charge
        if node.holds(ctx.pod.uid):
            need = (0, 0, 0, 0)
        total = 0.0
        counted = 0
        for axis in range(4):
            cap = capacity[axis]
            if cap > 0:
                left = free[axis] - need[axis]
                total += left / cap if left > 0 else 0.0
                counted += 1
        return total / counted if counted else 0.0
