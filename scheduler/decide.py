"""Filter every node, score the feasible ones, pick the best: pure, no I/O.

Scores: each plugin's raw scores are scaled to 0..100 over the feasible nodes (min to max), then
weighted and summed. Ties go to the node whose name sorts first, so the same cluster and pod
always give the same answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FilterPlugin, PodContext, ScorePlugin


@dataclass(frozen=True, slots=True)
class Decision:
    node: str | None
    nodes_considered: int
    feasible: int
    reasons: Counter[str] = field(default_factory=Counter)
    scores: tuple[tuple[str, float], ...] = ()

    @property
    def scheduled(self) -> bool:
        return self.node is not None


def filter_node(
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
        for index, value in enumerate(_scaled([plugin.score(ctx, n) for n in feasible])):
            totals[index] += weight * value
    ranked = [(node.name, total) for node, total in zip(feasible, totals, strict=True)]
    ranked.sort(key=lambda item: (-item[1], item[0]))
    return ranked


def feasible_nodes_to_find(total: int) -> int:
    """How many feasible nodes are enough to score, as kube-scheduler's adaptive default:
    every node up to 100, then a share falling from 50% to 5% as the cluster grows."""
    if total <= 100:
        return total
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
) -> Decision:
    """Filter nodes from ``start`` (wrapping) until enough are feasible, score those, pick one.

    ``preferred`` nodes (those holding siblings) are always examined, so co-location never
    depends on where the sample starts. Every node is examined when none fits, so the reasons
    cover the whole cluster.
    """
    reasons: Counter[str] = Counter()
    feasible: list[NodeInfo] = []
    seen: set[str] = set()
    considered = 0
    enough = feasible_nodes_to_find(len(nodes))
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
