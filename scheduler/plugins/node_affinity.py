"""nodeSelector and required node affinity filter; preferred node affinity scores."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FITS, PodContext, Reasons

NAME = "NodeAffinity"
MISMATCH = "node(s) didn't match Pod's node affinity/selector"


def _matches_expression(expression: Mapping[str, Any], value: str | None) -> bool:
    operator = expression.get("operator")
    values = [str(v) for v in expression.get("values") or []]
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            number, bound = int(value), int(values[0])
        except ValueError:
            return False
        return number > bound if operator == "Gt" else number < bound
    return False


def term_matches(term: Mapping[str, Any], labels: Mapping[str, str], node_name: str) -> bool:
    """A NodeSelectorTerm: all expressions and fields must match; an empty term matches none."""
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    if not all(_matches_expression(e, labels.get(str(e.get("key")))) for e in expressions):
        return False
    return all(
        _matches_expression(f, node_name if f.get("key") == "metadata.name" else None)
        for f in fields
    )


class NodeAffinity:
    name = NAME

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        pod = ctx.pod
        if not pod.node_selector and not pod.required_node_terms:
            return FITS
        labels = node.facts.labels if node.facts else {}
        if any(labels.get(k) != v for k, v in pod.node_selector.items()):
            return (MISMATCH,)
        if pod.required_node_terms and not any(
            term_matches(t, labels, node.name) for t in pod.required_node_terms
        ):
            return (MISMATCH,)
        return FITS

    def score(self, ctx: PodContext, node: NodeInfo) -> float:
        if not ctx.pod.preferred_node_terms:
            return 0.0
        labels = node.facts.labels if node.facts else {}
        return float(
            sum(
                int(p.get("weight", 0))
                for p in ctx.pod.preferred_node_terms
                if term_matches(p.get("preference") or {}, labels, node.name)
            )
        )
