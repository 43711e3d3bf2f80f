"""nodeSelector and required node affinity filter; preferred node affinity scores."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scheduler.nodeinfo import NodeInfo
from scheduler.nodetable import Floats, Mask, NodeTable, Rows
from scheduler.plugins.framework import FITS, PodContext, Reasons
from scheduler.plugins.rows import static_fits, static_reasons, static_scores, template
from scheduler.podfacts import PodFacts

NAME = "NodeAffinity"
SCORE = NAME + "/score"
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


def required_affinity_matches(pod: PodFacts, labels: Mapping[str, str], node_name: str) -> bool:
    """The pod's nodeSelector and required node affinity both accept the node."""
    if any(labels.get(k) != v for k, v in pod.node_selector.items()):
        return False
    return not pod.required_node_terms or any(
        term_matches(t, labels, node_name) for t in pod.required_node_terms
    )


class NodeAffinity:
    name = NAME

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        pod = ctx.pod
        if not pod.node_selector and not pod.required_node_terms:
            return FITS
        labels = node.facts.labels if node.facts else {}
        return FITS if required_affinity_matches(pod, labels, node.name) else (MISMATCH,)

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

    def filter_rows(self, ctx: PodContext, table: NodeTable) -> Mask:
        pod = ctx.pod
        if not pod.node_selector and not pod.required_node_terms:
            return np.ones(table.size, np.bool_)
        key = template(pod.node_selector, pod.required_node_terms)
        return static_fits(table, NAME, key, lambda node: self.filter(ctx, node))

    def explain_rows(self, ctx: PodContext, table: NodeTable, rows: Rows) -> list[tuple[str, Mask]]:
        key = template(ctx.pod.node_selector, ctx.pod.required_node_terms)
        return static_reasons(table, NAME, key, lambda node: self.filter(ctx, node), rows)

    def score_rows(self, ctx: PodContext, table: NodeTable, rows: Rows) -> Floats:
        if not ctx.pod.preferred_node_terms:
            return np.zeros(len(rows), np.float64)
        key = template(ctx.pod.preferred_node_terms)
        return static_scores(table, SCORE, key, lambda node: self.score(ctx, node), rows)
