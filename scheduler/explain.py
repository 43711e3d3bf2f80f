"""Messages users read in ``kubectl describe pod``, phrased like kube-scheduler's.

The reasons counted in ``unschedulable_message`` are the filters' own (``scheduler.plugins``),
worded exactly as kube-scheduler words the same refusal wherever it has one — ``node(s) didn't
match pod anti-affinity rules``, ``node(s) didn't match pod topology spread constraints``,
``node(s) didn't have free ports for the requested pod ports`` — so a user reads the same
summary from either scheduler; ``kubectl bandwidth explain`` shows them per node.
"""

from __future__ import annotations

from collections import Counter

from bandwidth.request import BandwidthRequest


def unschedulable_message(nodes_considered: int, reasons: Counter[str], rejection: str = "") -> str:
    """``0/50 nodes are available: 30 insufficient ..., 20 node(s) had untolerated taint ...``

    A ``rejection`` of the pod as a whole is said once, without a count, as kube-scheduler
    says a PreFilter's: ``0/50 nodes are available: pod has unbound immediate ...``."""
    if nodes_considered == 0:
        return "0/0 nodes are available: no nodes in the cluster."
    if rejection:
        return f"0/{nodes_considered} nodes are available: {rejection}."
    parts = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    detail = ", ".join(f"{count} {reason}" for count, reason in ((c, r) for r, c in parts))
    return f"0/{nodes_considered} nodes are available: {detail}."


def scheduled_message(namespace: str, name: str, node: str, request: BandwidthRequest) -> str:
    held = "no bandwidth" if request.is_zero() else request.describe()
    return f"Successfully assigned {namespace}/{name} to {node} (reserved {held})"
