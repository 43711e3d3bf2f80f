"""Co-locate siblings: prefer the node already holding the most pods of the same workload,
and, for the pods that come first, the node where the most siblings can still follow."""

from __future__ import annotations

import numpy as np

from scheduler.nodeinfo import NodeInfo
from scheduler.nodetable import SAFE, Floats, NodeTable, Rows
from scheduler.plugins.framework import PodContext

COLOCATION = "SiblingColocation"
ROOM = "SiblingRoom"


class SiblingColocation:
    name = COLOCATION

    def score(self, ctx: PodContext, node: NodeInfo) -> float:
        if ctx.workload is None:
            return 0.0
        return float(node.siblings.get(ctx.workload, 0))

    def score_rows(self, ctx: PodContext, table: NodeTable, rows: Rows) -> Floats:
        if ctx.workload is None:
            return np.zeros(len(rows), np.float64)
        return table.siblings(ctx.workload)[rows]


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

    def score_rows(self, ctx: PodContext, table: NodeTable, rows: Rows) -> Floats | None:
        to_come = ctx.siblings_to_come
        if ctx.workload is None or to_come == 0:
            return np.zeros(len(rows), np.float64)
        pod = ctx.pod
        columns = table.columns(rows)
        room = np.full(table.size if isinstance(columns, slice) else len(rows), to_come, np.int64)
        for resource, amount in pod.requests.items():
            if amount > 0:
                if amount >= SAFE:
                    return None
                allocatable = table.allocatable(resource)[columns]
                left = allocatable - table.requested(resource)[columns] - amount
                room = np.minimum(room, np.maximum(0, left) // amount)
        if table.unsafe:
            return None
        free = table.free[:, columns]
        has_ledger = table.has_ledger[columns]
        need = pod.charge
        for axis in range(4):
            if need[axis] > 0:
                fits = np.maximum(0, free[axis] - need[axis]) // need[axis]
                room = np.where(has_ledger, np.minimum(room, fits), room)
        scores: Floats = table.picked(room, rows, columns).astype(np.float64)
        return scores
