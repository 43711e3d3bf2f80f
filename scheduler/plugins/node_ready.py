"""Only Ready nodes that are not cordoned take pods."""

from __future__ import annotations

from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FITS, PodContext, Reasons

NAME = "NodeReady"
NOT_READY = "node(s) were not ready"
UNSCHEDULABLE = "node(s) were unschedulable"


class NodeReady:
    name = NAME

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        facts = node.facts
        if facts is None or not facts.ready:
            return (NOT_READY,)
        if facts.unschedulable and not _tolerates_unschedulable(ctx):
            return (UNSCHEDULABLE,)
        return FITS


def _tolerates_unschedulable(ctx: PodContext) -> bool:
    return any(
        t.get("key") == "node.kubernetes.io/unschedulable" and t.get("operator") == "Exists"
        for t in ctx.pod.tolerations
    )
