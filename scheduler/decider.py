"""Choosing a node for one pod against the cluster state: no I/O, reusable by the scheduling
loop, the benchmark and ``kubectl bandwidth``."""

from __future__ import annotations

from collections import Counter

import structlog

from scheduler.cluster import ClusterState
from scheduler.config import ScoreWeights
from scheduler.decide import Decision, decide_rows, filter_node
from scheduler.plugins.framework import FilterPlugin, PodContext, ScorePlugin
from scheduler.plugins.registry import default_filters, default_scorers

log = structlog.get_logger("scheduler")


class Decider:
    """Holds the plugins and where the next node sample starts (rotating, for fairness)."""

    def __init__(
        self,
        weights: ScoreWeights,
        filters: list[FilterPlugin] | None = None,
        scorers: list[tuple[ScorePlugin, int]] | None = None,
    ) -> None:
        self.filters = filters if filters is not None else default_filters()
        self.scorers = scorers if scorers is not None else default_scorers(weights)
        self._next_start = 0

    def choose(self, state: ClusterState, ctx: PodContext, *, keep_scores: int = 0) -> Decision:
        """The decision for ``ctx`` on the current state; call with ``state.lock`` held to
        make it and the following ``assume`` one step."""
        rejection = ctx.rejection
        if rejection is not None:
            count = sum(1 for info in state.nodes.values() if info.facts is not None)
            return Decision(None, count, 0, Counter({rejection.reason: count}), rejection=rejection)
        adopted = self._adopt_reservation(state, ctx)
        if adopted is not None:
            return adopted
        nominated = self._nominated_node(state, ctx)
        if nominated is not None:
            return nominated
        table = state.table
        decision = decide_rows(
            ctx,
            table,
            self.filters,
            self.scorers,
            start=self._next_start % max(1, table.size),
            preferred=table.rows(state.sibling_nodes(ctx.workload)),
            keep_scores=keep_scores,
            percentage=state.config.percentage_of_nodes_to_score,
        )
        self._next_start += decision.nodes_considered
        return decision

    def _nominated_node(self, state: ClusterState, ctx: PodContext) -> Decision | None:
        """The node a preemption made room on, when the pod fits there now (kube-scheduler
        tries it before any other)."""
        name = state.nominator.node_of(ctx.pod.uid)
        node = state.nodes.get(name) if name is not None else None
        if node is None or node.facts is None or filter_node(ctx, node, self.filters):
            return None
        return Decision(node.name, 1, 1)

    def _adopt_reservation(self, state: ClusterState, ctx: PodContext) -> Decision | None:
        """A reservation left by a replica that died before binding: bind there if it fits."""
        holder = state.node_holding(ctx.pod.uid)
        if holder is None or holder.facts is None or filter_node(ctx, holder, self.filters):
            return None
        log.info("reservation_adopted", pod=ctx.pod.key, node=holder.name)
        return Decision(holder.name, 1, 1)
