"""Messages users read in ``kubectl describe pod``, phrased like kube-scheduler's."""

from __future__ import annotations

from collections import Counter

from bandwidth.request import BandwidthRequest


def unschedulable_message(nodes_considered: int, reasons: Counter[str]) -> str:
    """``0/50 nodes are available: 30 insufficient ..., 20 node(s) had untolerated taint ...``"""
    if nodes_considered == 0:
        return "0/0 nodes are available: no nodes in the cluster."
    parts = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    detail = ", ".join(f"{count} {reason}" for count, reason in ((c, r) for r, c in parts))
    return f"0/{nodes_considered} nodes are available: {detail}."


def scheduled_message(namespace: str, name: str, node: str, request: BandwidthRequest) -> str:
    held = "no bandwidth" if request.is_zero() else request.describe()
    return f"Successfully assigned {namespace}/{name} to {node} (reserved {held})"
