"""Filter every node, score the feasible ones, pick the best: pure, no I/O.

Before that, ``prefilter`` lets each plugin that needs the whole cluster (inter-pod affinity,
topology spread) prepare its per-pod state once; a plugin that finds nothing to check for the
pod is then skipped (``skips``), as kube-scheduler skips a plugin whose PreFilter says Skip.

Pods nominated to a node (room a preemption freed for them) count as placed there for every
pod of lower or equal priority (``filter_node``).

Scores: each plugin's raw scores are scaled to 0..100 over the feasible nodes (min to max), then
weighted and summed. Ties go to the node whose name sorts first, so the same cluster and pod
always give the same answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np

from scheduler.nodeinfo import NodeInfo
from scheduler.nodetable import Floats, Mask, NodeTable, Rows
from scheduler.plugins.framework import (
    ClusterView,
    FilterPlugin,
    PodContext,
    PodRejection,
    PreFilterPlugin,
    RowFilter,
    ScorePlugin,
)
from scheduler.preemption.whatif import with_nominated


@dataclass(frozen=True, slots=True)
class Decision:
    node: str | None
    nodes_considered: int
    feasible: int
    reasons: Counter[str] = field(default_factory=Counter)
    scores: tuple[tuple[str, float], ...] = ()
    rejection: PodRejection | None = None
    """Set when the pod as a whole was refused before any node was filtered."""

    @property
    def scheduled(self) -> bool:
        return self.node is not None


def prefilter(
    ctx: PodContext, cluster: ClusterView, plugins: Sequence[PreFilterPlugin]
) -> PodContext:
    """``ctx`` with each plugin's per-pod state; unchanged when no plugin has any."""
    cycle = {}
    for plugin in plugins:
        state = plugin.prefilter(ctx.pod, cluster)
        if state is not None:
            cycle[plugin.name] = state
    return replace(ctx, cycle=cycle) if cycle else ctx


def skips(plugin: object, ctx: PodContext) -> bool:
    """kube-scheduler's Skip: a plugin whose prefilter found nothing to check for this pod
    is not run at all (its filter would pass every node and its score be flat)."""
    return hasattr(plugin, "prefilter") and getattr(plugin, "name", "") not in ctx.cycle


def filter_node(
    ctx: PodContext, node: NodeInfo, filters: Sequence[FilterPlugin]
) -> tuple[str, ...]:
    """The first refusing filter's reasons, or ``()``.

    On a node where pods of at least this pod's priority are nominated (``ctx.nominated``),
    the filters run twice as in kube-scheduler: with those pods placed on it (so the room a
    preemption freed for them is not taken), then without (so a nominated pod that is not
    there yet cannot satisfy an affinity)."""
    if ctx.nominated:
        nominated = ctx.nominated.get(node.name)
        if nominated:
            reasons = _run_filters(*with_nominated(ctx, node, filters, nominated), filters)
            if reasons:
                return reasons
    return _run_filters(ctx, node, filters)


def _run_filters(
    ctx: PodContext, node: NodeInfo, filters: Sequence[FilterPlugin]
) -> tuple[str, ...]:
    for plugin in filters:
        reasons = plugin.filter(ctx, node)
        if reasons:
            return reasons
    return ()


def _scaled(raw: list[float]) -> list[float]:
    low, high = min(raw), max(raw)
    if high == low:
        return [0.0] * len(raw)
    return [(value - low) * 100.0 / (high - low) for value in raw]


def rank(
    ctx: PodContext, feasible: Sequence[NodeInfo], scorers: Sequence[tuple[ScorePlugin, int]]
) -> list[tuple[str, float]]:
    """Feasible nodes with their total score, best first."""
    totals = [0.0] * len(feasible)
    for plugin, weight in scorers:
        if skips(plugin, ctx):
            continue
        for index, value in enumerate(_scaled([plugin.score(ctx, n) for n in feasible])):
            totals[index] += weight * value
    ranked = [(node.name, total) for node, total in zip(feasible, totals, strict=True)]
    ranked.sort(key=lambda item: (-item[1], item[0]))
    return ranked


def feasible_nodes_to_find(total: int, percentage: int = 0) -> int:
    """How many feasible nodes are enough to score, as kube-scheduler's ``numFeasibleNodesToFind``:
    every node up to 100 or at 100%, else ``percentage`` of them but at least 100; with
    ``percentage`` 0 the adaptive default, a share falling from 50% to 5% as the cluster grows."""
    if total <= 100 or percentage >= 100:
        return total
    if percentage <= 0:
        percentage = max(5, 50 - total // 125)
    return max(100, total * percentage // 100)


def decide(
    ctx: PodContext,
    nodes: Sequence[NodeInfo],
    filters: Sequence[FilterPlugin],
    scorers: Sequence[tuple[ScorePlugin, int]],
    *,
    start: int = 0,
    preferred: Iterable[NodeInfo] = (),
    keep_scores: int = 0,
    percentage: int = 0,
) -> Decision:
    """Filter nodes from ``start`` (wrapping) until enough are feasible
    (``feasible_nodes_to_find`` with ``percentage``), score those, pick one.

    ``preferred`` nodes (those holding siblings) are always examined, so co-location never
    depends on where the sample starts. Every node is examined when none fits, so the reasons
    cover the whole cluster.
    """
    filters = [plugin for plugin in filters if not skips(plugin, ctx)]
    reasons: Counter[str] = Counter()
    feasible: list[NodeInfo] = []
    seen: set[str] = set()
    considered = 0
    enough = feasible_nodes_to_find(len(nodes), percentage)
    for node in _candidates(nodes, start, preferred):
        if node.facts is None or node.name in seen:
            continue
        seen.add(node.name)
        considered += 1
        failed = filter_node(ctx, node, filters)
        if failed:
            reasons.update(failed)
            continue
        feasible.append(node)
        if len(feasible) >= enough:
            break
    if not feasible:
        return Decision(None, considered, 0, reasons)
    if len(feasible) == 1:
        return Decision(feasible[0].name, considered, 1, reasons)
    ranked = rank(ctx, feasible, scorers)
    return Decision(ranked[0][0], considered, len(feasible), reasons, tuple(ranked[:keep_scores]))


def _candidates(
    nodes: Sequence[NodeInfo], start: int, preferred: Iterable[NodeInfo]
) -> Iterable[NodeInfo]:
    yield from preferred
    count = len(nodes)
    for offset in range(count):
        yield nodes[(start + offset) % count]


def decide_rows(
    ctx: PodContext,
    table: NodeTable,
    filters: Sequence[FilterPlugin],
    scorers: Sequence[tuple[ScorePlugin, int]],
    *,
    start: int = 0,
    preferred: Sequence[int] = (),
    keep_scores: int = 0,
    percentage: int | None = 0,
) -> Decision:
    """``decide`` over the table's rows, each filter and score over every node at once where
    the plugin can (``RowFilter``, ``RowScore``): the same nodes examined in the same order,
    the same decision, reasons and scores as ``decide(ctx, table.nodes, ...)`` with
    ``preferred`` the rows of the preferred nodes.

    A plugin that cannot (no row method, or ``None`` for this pod), the nodes where pods are
    nominated and the rows a filter names as exceptions (``RowExceptions``) go through the
    plugin's per-node method, as ``decide`` would.

    ``percentage`` None: every node when every filter ran over the rows, kube's adaptive
    share (0) when one runs per node — a Python call per node, which over a whole large
    cluster would cost more than the sample it replaces."""
    filters = [plugin for plugin in filters if not skips(plugin, ctx)]
    size = table.size
    masks: list[tuple[FilterPlugin, Mask]] = []
    per_node: list[FilterPlugin] = []
    exact: set[int] = set()
    for plugin in filters:
        by_rows = getattr(plugin, "filter_rows", None)  # not isinstance: a Protocol's is slow
        mask = by_rows(ctx, table) if by_rows is not None else None
        if mask is None:
            per_node.append(plugin)
            continue
        masks.append((plugin, mask))
        exceptions = getattr(plugin, "exact_rows", None)
        if exceptions is not None:
            exact.update(exceptions(ctx, table))
    if ctx.nominated:
        exact.update(
            node.row for name in ctx.nominated if (node := table.node_named(name)) is not None
        )
    fits = np.ones(size, np.bool_)
    for _, mask in masks:
        fits &= mask
    order = _row_order(table, start, preferred)
    verdicts: dict[int, tuple[str, ...]] = {}
    for row in exact:
        verdicts[row] = filter_node(ctx, table.nodes[row], filters)
        fits[row] = not verdicts[row]
    if percentage is None:
        percentage = 0 if per_node else 100
    enough = feasible_nodes_to_find(size, percentage)
    if per_node:
        examined, feasible = _examine_per_node(ctx, table, order, fits, per_node, enough, verdicts)
    else:
        in_order = fits[order]
        cut = len(order)
        if enough < cut:
            found = np.cumsum(in_order)
            if found[-1] >= enough:
                cut = int(np.searchsorted(found, enough)) + 1
                in_order = in_order[:cut]
        examined = order[:cut]
        feasible = examined[in_order]
    considered = len(examined)
    refused = examined[~fits[examined]] if len(feasible) < considered else examined[:0]
    if per_node or not len(refused):
        reasons: Counter[str] = Counter()
        for row in refused.tolist():
            failed = verdicts.get(row)
            reasons.update(
                failed if failed is not None else filter_node(ctx, table.nodes[row], filters)
            )
    else:
        reasons = _explain(ctx, table, examined, refused, masks, verdicts)
    if not len(feasible):
        return Decision(None, considered, 0, reasons)
    if len(feasible) == 1:
        return Decision(table.nodes[int(feasible[0])].name, considered, 1, reasons)
    totals = rank_rows(ctx, table, feasible, scorers)
    rank = table.name_rank()
    if keep_scores:
        best = np.lexsort((rank[feasible], -totals))
        winner = int(feasible[best[0]])
        scores = tuple(
            (table.nodes[int(feasible[i])].name, float(totals[i])) for i in best[:keep_scores]
        )
    else:
        top = feasible[totals == totals.max()]
        winner = int(top[np.argmin(rank[top])])
        scores = ()
    return Decision(table.nodes[winner].name, considered, len(feasible), reasons, scores)


def rank_rows(
    ctx: PodContext, table: NodeTable, rows: Rows, scorers: Sequence[tuple[ScorePlugin, int]]
) -> Floats:
    """``rank``'s total score of each of ``rows`` (the same sums, in the same order)."""
    totals = np.zeros(len(rows), np.float64)
    nodes: list[NodeInfo] | None = None
    for plugin, weight in scorers:
        if skips(plugin, ctx):
            continue
        by_rows = getattr(plugin, "score_rows", None)
        raw = by_rows(ctx, table, rows) if by_rows is not None else None
        if raw is None:
            if nodes is None:
                nodes = [table.nodes[row] for row in rows.tolist()]
            raw = np.fromiter((plugin.score(ctx, node) for node in nodes), np.float64, len(rows))
        low, high = raw.min(), raw.max()
        if high != low:
            totals += weight * ((raw - low) * 100.0 / (high - low))
    return totals


def _row_order(table: NodeTable, start: int, preferred: Sequence[int]) -> Rows:
    """Rows in the order ``_candidates`` yields their nodes, without absent nodes and repeats."""
    present = table.present_rows()
    if start:
        split = int(np.searchsorted(present, start))
        present = np.concatenate([present[split:], present[:split]])
    if not preferred:
        return present
    first = np.asarray(list(dict.fromkeys(preferred)), np.intp)
    first = first[table.present[first]]
    rest = np.ones(table.size, np.bool_)
    rest[first] = False
    return np.concatenate([first, present[rest[present]]])


def _examine_per_node(
    ctx: PodContext,
    table: NodeTable,
    order: Rows,
    fits: Mask,
    per_node: Sequence[FilterPlugin],
    enough: int,
    verdicts: Mapping[int, tuple[str, ...]],
) -> tuple[Rows, Rows]:
    """Examined and feasible rows when some filters run per node (on the rows every row
    filter accepted, in order, until enough fit); ``fits`` is updated."""
    feasible: list[int] = []
    count = 0
    for row in order.tolist():
        count += 1
        if fits[row]:
            if row in verdicts or not filter_node(ctx, table.nodes[row], per_node):
                feasible.append(row)
                if len(feasible) >= enough:
                    break
            else:
                fits[row] = False
    return order[:count], np.asarray(feasible, np.intp)


def _explain(
    ctx: PodContext,
    table: NodeTable,
    examined: Rows,
    refused: Rows,
    masks: Sequence[tuple[FilterPlugin, Mask]],
    verdicts: Mapping[int, tuple[str, ...]],
) -> Counter[str]:
    """The reasons of the refused rows, counted as ``decide`` counts them: each node's first
    refusing filter, reasons in the order they were first met along the examined rows."""
    position = np.empty(table.size, np.int64)
    position[examined] = np.arange(len(examined))
    found: dict[str, list[int]] = {}  # reason -> [count, first position, order on that node]

    def count(reason: str, times: int, first: int, rank: int) -> None:
        entry = found.get(reason)
        if entry is None:
            found[reason] = [times, first, rank]
        else:
            entry[0] += times
            if (first, rank) < (entry[1], entry[2]):
                entry[1], entry[2] = first, rank

    left = refused
    if verdicts:
        exact = np.isin(refused, list(verdicts))
        for row in refused[exact].tolist():
            for rank, reason in enumerate(verdicts[row]):
                count(reason, 1, int(position[row]), rank)
        left = refused[~exact]
    for plugin, mask in masks:
        if not len(left):
            break
        here = left[~mask[left]]
        if len(here):
            first = position[here]
            explained = cast(RowFilter, plugin).explain_rows(ctx, table, here)
            for rank, (reason, carry) in enumerate(explained):
                count(reason, int(carry.sum()), int(first[carry].min()), rank)
            left = left[mask[left]]
    ordered = sorted(found.items(), key=lambda item: (item[1][1], item[1][2]))
    return Counter({reason: entry[0] for reason, entry in ordered})
