"""Hard taints must be tolerated; untolerated PreferNoSchedule taints lower the score."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from scheduler.nodeinfo import NodeInfo
from scheduler.nodetable import Floats, Mask, NodeTable, Rows
from scheduler.plugins.framework import FITS, PodContext, Reasons
from scheduler.plugins.rows import static_fits, static_reasons, static_scores, template

NAME = "TaintToleration"
SCORE = NAME + "/score"
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


def untolerated_hard_taint(
    taints: Iterable[Mapping[str, Any]], tolerations: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The first NoSchedule or NoExecute taint the tolerations do not cover, if any."""
    blocking = _untolerated(taints, tolerations, set(HARD_EFFECTS))
    return blocking[0] if blocking else None


def describe_taint(taint: Mapping[str, Any]) -> str:
    value = taint.get("value")
    return f"{{{taint.get('key')}: {value}}}" if value else f"{{{taint.get('key')}}}"


class TaintToleration:
    name = NAME

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        taints = node.facts.taints if node.facts else ()
        if not taints:
            return FITS
        blocking = untolerated_hard_taint(taints, ctx.pod.tolerations)
        if blocking is not None:
            return (f"node(s) had untolerated taint {describe_taint(blocking)}",)
        return FITS

    def score(self, ctx: PodContext, node: NodeInfo) -> float:
        taints = node.facts.taints if node.facts else ()
        if not taints:
            return 0.0
        return -float(len(_untolerated(taints, ctx.pod.tolerations, {"PreferNoSchedule"})))

    def filter_rows(self, ctx: PodContext, table: NodeTable) -> Mask:
        return static_fits(table, NAME, template(ctx.pod.tolerations), self._filter_for(ctx))

    def explain_rows(self, ctx: PodContext, table: NodeTable, rows: Rows) -> list[tuple[str, Mask]]:
        key = template(ctx.pod.tolerations)
        return static_reasons(table, NAME, key, self._filter_for(ctx), rows)

    def score_rows(self, ctx: PodContext, table: NodeTable, rows: Rows) -> Floats:
        key = template(ctx.pod.tolerations)
        return static_scores(table, SCORE, key, lambda node: self.score(ctx, node), rows)

    def _filter_for(self, ctx: PodContext) -> Callable[[NodeInfo], Reasons]:
        return lambda node: self.filter(ctx, node)
