"""Only Ready nodes that are not cordoned take pods."""

from __future__ import annotations

from collections.abc import Callable

from scheduler.nodeinfo import NodeInfo
from scheduler.nodetable import Mask, NodeTable, Rows
from scheduler.plugins.framework import FITS, PodContext, Reasons
from scheduler.plugins.rows import static_fits, static_reasons, template
from scheduler.plugins.taint_toleration import tolerates

NAME = "NodeReady"
NOT_READY = "node(s) were not ready"
UNSCHEDULABLE = "node(s) were unschedulable"
CORDON_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
"""A cordoned node counts as tainted with this, as for kube-scheduler: a pod tolerating it
(by key, or with a key-less ``Exists``) may go there."""


class NodeReady:
    name = NAME

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        facts = node.facts
        if facts is None or not facts.ready:
            return (NOT_READY,)
        if facts.unschedulable and not _tolerates_unschedulable(ctx):
            return (UNSCHEDULABLE,)
        return FITS

    def filter_rows(self, ctx: PodContext, table: NodeTable) -> Mask:
        return static_fits(table, NAME, template(ctx.pod.tolerations), _bound(self, ctx))

    def explain_rows(self, ctx: PodContext, table: NodeTable, rows: Rows) -> list[tuple[str, Mask]]:
        return static_reasons(table, NAME, template(ctx.pod.tolerations), _bound(self, ctx), rows)


def _bound(plugin: NodeReady, ctx: PodContext) -> Callable[[NodeInfo], Reasons]:
    return lambda node: plugin.filter(ctx, node)


def _tolerates_unschedulable(ctx: PodContext) -> bool:
    return any(tolerates(t, CORDON_TAINT) for t in ctx.pod.tolerations)
