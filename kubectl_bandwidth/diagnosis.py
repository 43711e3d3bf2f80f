"""Why a pod is where it is, or why it still waits: ``kubectl bandwidth explain``.

Pure. The verdict comes from the scheduler's own code: ``scheduler.verdict`` for the refusal
or the node it would pick (the code path the scheduling loop takes), ``filter_node`` with its
filters and ``rank`` with its scorers for each node's row — run against the view
``snapshot.build_snapshot`` built, so the counts match what the scheduler writes in the pod's
``PodScheduled`` condition as long as the cluster has not changed since.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bandwidth.budget import Usage
from bandwidth.model import Reservation
from bandwidth.request import BandwidthRequest
from kubectl_bandwidth.snapshot import Snapshot
from scheduler.decide import filter_node, rank
from scheduler.decider import Decider
from scheduler.plugins.framework import PodContext
from scheduler.podfacts import PodFacts, read_pod
from scheduler.verdict import judge, refusal

SOURCE_SCHEDULER = "Scheduler"
SOURCE_OBSERVED = "Observed"


@dataclass(frozen=True, slots=True)
class NodeVerdict:
    """One node's answer for the pod: feasible with a score and rank, or the reasons not."""

    node: str
    feasible: bool
    reasons: tuple[str, ...] = ()
    score: float | None = None
    rank: int | None = None
    free: Usage | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    pod: PodFacts
    context: PodContext
    ours: bool
    scheduler_message: str
    node: str = ""
    reservation: Reservation | None = None
    source: str = ""
    node_free: Usage | None = None
    verdicts: tuple[NodeVerdict, ...] = ()
    summary: str = ""
    best: str | None = None
    held_on: str = ""
    held_refused: tuple[str, ...] = ()
    refused: str = ""
    """The Event reason when the scheduler turns the pod away before any filter."""
    nominated: str = ""
    """The node a preemption made room on for this pending pod."""
    making_room: tuple[str, ...] = ()
    """Lower-priority pods preempted on that node, still there (terminating)."""

    @property
    def request(self) -> BandwidthRequest:
        return self.pod.bandwidth


def scheduled_condition_message(pod: Mapping[str, Any]) -> str:
    """The message of ``PodScheduled=False``: what the scheduler last wrote on the pod."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return str(condition.get("message") or condition.get("reason") or "")
    return ""


def reason_counts(reasons: Counter[str]) -> str:
    """``2 insufficient ..., 1 Insufficient cpu``: most frequent first, as the scheduler orders."""
    ordered = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count} {reason}" for reason, count in ordered)


def available_line(
    feasible: int, considered: int, chosen: str | None, reasons: Counter[str]
) -> str:
    """``2/3 nodes are available; the scheduler would choose a; the others: 1 ...``"""
    line = f"{feasible}/{considered} nodes are available"
    if chosen is not None:
        line += f"; the scheduler would choose {chosen}"
    if reasons:
        line += f"; the others: {reason_counts(reasons)}"
    return line + "."


def _free(snapshot: Snapshot, node: str) -> Usage | None:
    info = snapshot.state.nodes.get(node)
    if info is None or info.capacity is None:
        return None
    return info.capacity - info.bandwidth_used


def _bound(
    snapshot: Snapshot, facts: PodFacts, ctx: PodContext, ours: bool, said: str
) -> Explanation:
    info = snapshot.state.nodes.get(facts.node_name)
    ledger = info.bandwidth if info is not None else None
    reservation = ledger.reservations.get(facts.uid) if ledger is not None else None
    if reservation is not None:
        source = SOURCE_SCHEDULER
    elif not facts.bandwidth.is_zero() and not facts.terminal:
        source = SOURCE_OBSERVED
    else:
        source = ""
    return Explanation(
        pod=facts,
        context=ctx,
        ours=ours,
        scheduler_message=said,
        node=facts.node_name,
        reservation=reservation,
        source=source,
        node_free=_free(snapshot, facts.node_name),
    )


def explain_pod(snapshot: Snapshot, pod: Mapping[str, Any]) -> Explanation:
    """The pod's node and reservation when bound; else every node's verdict, best first."""
    config = snapshot.config
    facts = read_pod(pod, config.request_policy)
    ctx = snapshot.state.context_for(facts)
    ours = facts.scheduler_name == config.scheduler_name
    said = scheduled_condition_message(pod)
    if facts.bound:
        return _bound(snapshot, facts, ctx, ours, said)
    if facts.terminal:
        return Explanation(
            facts, ctx, ours, said, summary=f"the pod is {facts.phase}: it waits for no node."
        )
    refused = refusal(facts)
    if refused is not None:  # no filter runs, here as in the scheduler
        return Explanation(facts, ctx, ours, said, summary=refused.message, refused=refused.reason)
    return Explanation(
        facts, ctx, ours, said, **_verdicts(snapshot, ctx), **_nomination(snapshot, facts)
    )


def _nomination(snapshot: Snapshot, facts: PodFacts) -> dict[str, Any]:
    node = snapshot.state.nominator.node_of(facts.uid)
    if node is None:
        return {}
    info = snapshot.state.nodes.get(node)
    going = sorted(
        p.key
        for p in (info.pods.values() if info is not None else ())
        if p.preempted and p.deleting and p.priority < facts.priority
    )
    return {"nominated": node, "making_room": tuple(going)}


def _verdicts(snapshot: Snapshot, ctx: PodContext) -> dict[str, Any]:
    state = snapshot.state
    decider = Decider(snapshot.config.weights)
    nodes = [info for _, info in sorted(state.nodes.items()) if info.facts is not None]
    rejected: list[NodeVerdict] = []
    feasible = []
    for info in nodes:
        reasons = filter_node(ctx, info, decider.filters)
        if reasons:
            rejected.append(NodeVerdict(info.name, False, reasons, free=_free(snapshot, info.name)))
        else:
            feasible.append(info)
    ranked = rank(ctx, feasible, decider.scorers) if feasible else []
    accepted = [
        NodeVerdict(name, True, score=score, rank=index, free=_free(snapshot, name))
        for index, (name, score) in enumerate(ranked, start=1)
    ]
    rejected.sort(key=lambda verdict: (verdict.reasons, verdict.node))
    chosen = judge(state, decider, ctx.pod, assume=False)
    if feasible:
        counts = Counter(reason for verdict in rejected for reason in verdict.reasons)
        summary = available_line(len(feasible), len(nodes), chosen.node, counts)
    else:
        # When no node fits, the scheduler examines every node: its message, word for word.
        summary = chosen.message
    holder = state.node_holding(ctx.pod.uid)
    held: dict[str, Any] = {}
    if holder is not None and holder.facts is not None:
        held = {"held_on": holder.name, "held_refused": filter_node(ctx, holder, decider.filters)}
    return {
        "verdicts": tuple(accepted + rejected),
        "summary": summary,
        "best": chosen.node,
        **held,
    }
