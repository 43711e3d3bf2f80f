"""Bandwidth headroom on both datapaths, uplink and downlink, must cover the request.

Headroom is ``spec.capacity`` minus everything charged on the node (ledger, in-flight and
observed pods: ``NodeInfo.bandwidth_used``) — never the asynchronously written status. A
ledger that can take no new entry (``NodeInfo.ledger_full``) fits no pod that needs one.
The score prefers nodes left with the larger share of free bandwidth.

For preemption a shortfall is resolvable when the request fits in what the node has once
every pod is gone (capacity minus what DRA claims hold); a request larger than that, or a node
without a readable Bandwidth object, is not.
"""

from __future__ import annotations

import functools

import numpy as np

from bandwidth.budget import AXES, Axis
from scheduler.nodeinfo import NodeInfo
from scheduler.nodetable import Floats, Mask, NodeTable, Rows
from scheduler.plugins.framework import FITS, PodContext, Reasons

NAME = "BandwidthFit"
NO_LEDGER = "node(s) had no Bandwidth object yet"
LEDGER_FULL = "node(s) had a full Bandwidth ledger"


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
        if not pod.bandwidth.is_zero() and node.ledger_full() and not node.holds(pod.uid):
            return (LEDGER_FULL,)
        need = pod.charge
        if need[0] <= free[0] and need[1] <= free[1] and need[2] <= free[2] and need[3] <= free[3]:
            return FITS
        if node.holds(pod.uid):  # its own earlier reservation is part of what is charged
            free = (free[0] + need[0], free[1] + need[1], free[2] + need[2], free[3] + need[3])
        return tuple(insufficient(AXES[i], need[i]) for i in range(4) if need[i] > free[i])

    def resolvable(self, ctx: PodContext, node: NodeInfo) -> bool:
        capacity = node.capacity_vector
        if capacity is None or node.free_bandwidth is None:
            return False
        held = node.dra.usage.as_tuple()
        need = ctx.pod.charge
        return all(need[i] <= capacity[i] - held[i] for i in range(4))

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

    def filter_rows(self, ctx: PodContext, table: NodeTable) -> Mask:
        """``filter`` on every row but those holding the pod's reservation (``exact_rows``)."""
        size = table.size
        pod = ctx.pod
        free = table.free
        need = pod.charge
        fits: Mask = (
            (free[0, :size] >= need[0])
            & (free[1, :size] >= need[1])
            & (free[2, :size] >= need[2])
            & (free[3, :size] >= need[3])
        )
        if pod.bandwidth.is_zero():
            return ~table.has_ledger[:size] | fits
        return table.has_ledger[:size] & ~table.ledger_full[:size] & fits

    def exact_rows(self, ctx: PodContext, table: NodeTable) -> list[int]:
        return table.holders(ctx.pod.uid)

    def explain_rows(self, ctx: PodContext, table: NodeTable, rows: Rows) -> list[tuple[str, Mask]]:
        pod = ctx.pod
        found: list[tuple[str, Mask]] = []
        has_ledger = table.has_ledger[rows]
        counted = has_ledger
        if not pod.bandwidth.is_zero():
            unread: dict[str, Mask] = {}
            for position in np.flatnonzero(~has_ledger).tolist():
                reason = table.nodes[int(rows[position])].bandwidth_problem or NO_LEDGER
                mask = unread.get(reason)
                if mask is None:
                    mask = unread[reason] = np.zeros(len(rows), np.bool_)
                mask[position] = True
            found.extend(unread.items())
            full = has_ledger & table.ledger_full[rows]
            if full.any():
                found.append((LEDGER_FULL, full))
            counted = has_ledger & ~full
        free = table.free[:, rows]
        need = pod.charge
        for axis in range(4):
            short = counted & (free[axis] < need[axis])
            if short.any():
                found.append((insufficient(AXES[axis], need[axis]), short))
        return found

    def score_rows(self, ctx: PodContext, table: NodeTable, rows: Rows) -> Floats:
        """``score`` per row, the same sums in the same order: an axis without capacity (or a
        node without a ledger, all zero) has nothing free, so it adds 0.0 and is not counted;
        rows holding the pod's reservation are scored by ``score``."""
        columns = table.columns(rows)
        left = table.free[:, columns] - np.asarray(ctx.pod.charge, np.int64)[:, None]
        np.maximum(left, 0, out=left)
        share = left / table.capacity_divisor[:, columns]
        total = (share[0] + share[1]) + share[2] + share[3]
        mean: Floats = table.picked(total / table.capacity_axes[columns], rows, columns)
        for row in table.holders(ctx.pod.uid):
            for position in np.flatnonzero(rows == row).tolist():
                mean[position] = self.score(ctx, table.nodes[row])
        return mean
