"""Hard taints must be tolerated; untolerated PreferNoSchedule taints lower the score."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FITS, PodContext, Reasons

NAME = "TaintToleration"
HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    effect = toleration.get("effect")
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key")
    if toleration.get("operator") == "Exists":
        return not key or key == taint.get("key")
    return key == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or "")


def _untolerated(
    taints: Iterable[Mapping[str, Any]], tolerations: Iterable[Mapping[str, Any]], effects: set[str]
) -> list[Mapping[str, Any]]:
    tolerations = list(tolerations)
    return [
        taint
        for taint in taints
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations)
    ]


def describe_taint(taint: Mapping[str, Any]) -> str:
    value = taint.get("value")
    return f"{{{taint.get('key')}: {value}}}" if value else f"{{{taint.get('key')}}}"


class TaintToleration:
    name = NAME

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        taints = node.facts.taints if node.facts else ()
        if not taints:
            return FITS
        blocking = _untolerated(taints, ctx.pod.tolerations, set(HARD_EFFECTS))
        if blocking:
            return (f"node(s) had untolerated taint {describe_taint(blocking[0])}",)
        return FITS

    def score(self, ctx: PodContext, node: NodeInfo) -> float:
        taints = node.facts.taints if node.facts else ()
        if not taints:
            return 0.0
        return -float(len(_untolerated(taints, ctx.pod.tolerations, {"PreferNoSchedule"})))
