"""The PostFilter: for a pod no node takes, whether to preempt, where, and whom.

kube-scheduler's ``Evaluator.Preempt``, decided on the ``ClusterState`` under its lock, with no
I/O (``executor`` makes the writes)::

    eligible?      preemptionPolicy Never: no. Nominated already, and that node still holds a
                   lower-priority pod preempted for it (terminating, its deletion in flight,
                   or its reservation not yet released): no — wait for it to go, keep the
                   nomination. A nominated node the filters now refuse for good: yes, again.
    potential      nodes whose refusal taking pods away could resolve (``Resolvable``): not
                   a taint, a selector, a missing Bandwidth object, a request larger than the
                   node, the pod's own affinity
    candidates     ``victims.select_victims`` on each, from a rotating offset, until enough
                   (10% of the potential nodes, at least 100) with one sparing every budget
    choice         ``victims.pick``

Outcomes (``Attempt.result``, the label of ``vaclab_scheduler_preemption_attempts_total``)::

    preempted      a plan: nominate the pod to the node, preempt the victims, and clear the
                   nominations of lower-priority pods to that node
    waiting        victims of an earlier attempt still hold the room: keep the nomination
    not_eligible   preemptionPolicy Never
    no_candidate   nothing to preempt would help: the pod's nomination, if any, is dropped

A pod refused before any filter ran (an invalid request, a constraint we do not evaluate) never
gets here (``scheduler.verdict``); one a prefilter refused as a whole (``PodContext.rejection``:
a claim not found, say) gets ``no_candidate`` at once, as kube's preemption finds every node
``UnschedulableAndUnresolvable`` then.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from scheduler.cluster import ClusterState
from scheduler.explain import unschedulable_message
from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FilterPlugin, PodContext, Resolvable
from scheduler.podfacts import PodFacts
from scheduler.preemption.budgets import Budget
from scheduler.preemption.victims import NO_VICTIMS, Candidate, pick, select_victims

PREEMPTED = "preempted"
WAITING = "waiting"
NOT_ELIGIBLE = "not_eligible"
NO_CANDIDATE = "no_candidate"
RESULTS = (PREEMPTED, WAITING, NOT_ELIGIBLE, NO_CANDIDATE)

NEVER_MESSAGE = "not eligible due to preemptionPolicy=Never."
WAITING_MESSAGE = "not eligible due to a terminating pod on the nominated node."
NOT_HELPFUL = "Preemption is not helpful for scheduling"
MIN_CANDIDATES = 100
MIN_CANDIDATES_PERCENT = 10


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do: nominate ``preemptor`` to ``node``, preempt ``victims`` there, and clear
    the nominations of the lower-priority pods in ``cleared``."""

    preemptor: PodFacts
    node: str
    victims: tuple[PodFacts, ...]
    budget_violations: int = 0
    cleared: tuple[PodFacts, ...] = ()


@dataclass(frozen=True, slots=True)
class Attempt:
    result: str
    message: str = ""
    """``preemption: ...`` for the pod's FailedScheduling message; empty when preemption had
    nothing to say (no node held a pod it could take away)."""
    plan: Plan | None = None
    dropped_nomination: bool = False
    """The pod was nominated and the nomination no longer helps: clear its status."""
    retry_soon: bool = False
    """A lower-priority pod whose binding is in flight may be preempted once it is bound."""


def candidates_to_find(potential: int) -> int:
    """kube's ``minCandidateNodesPercentage`` (10) and ``minCandidateNodesAbsolute`` (100)."""
    return min(potential, max(potential * MIN_CANDIDATES_PERCENT // 100, MIN_CANDIDATES))


def removing_pods_may_help(
    ctx: PodContext, node: NodeInfo, filters: Sequence[FilterPlugin]
) -> bool:
    """Whether the node's refusal is kube's ``Unschedulable`` rather than ``...Unresolvable``:
    the first refusing filter says so; a node refused only beside nominated pods may help."""
    for plugin in filters:
        if plugin.filter(ctx, node):
            return isinstance(plugin, Resolvable) and plugin.resolvable(ctx, node)
    return True


def _holds_lower(node: NodeInfo, priority: int) -> bool:
    """Bound or in-flight pods of lower priority on the node (in-flight ones are waited for)."""
    return any(p.priority < priority for p in node.pods.values()) or any(
        p.priority < priority for p in node.assumed.values()
    )


def describe_victims(victims: Sequence[PodFacts]) -> str:
    shown = ", ".join(f"{v.key} (priority {v.priority})" for v in victims[:5])
    more = f" and {len(victims) - 5} more" if len(victims) > 5 else ""
    return shown + more


class Preemption:
    """Remembers what it preempted for whom, to wait for those pods to go before preempting
    again. Call ``attempt`` and ``forget`` with ``state.lock`` held."""

    def __init__(self) -> None:
        self._offset = 0
        self._victims_of: dict[str, tuple[str, frozenset[str]]] = {}

    def attempt(
        self,
        state: ClusterState,
        ctx: PodContext,
        filters: Sequence[FilterPlugin],
        budgets: Sequence[Budget],
        *,
        now: float | None = None,
    ) -> Attempt:
        now = time.time() if now is None else now
        pod = ctx.pod
        if not pod.may_preempt:
            return Attempt(NOT_ELIGIBLE, f"preemption: {NEVER_MESSAGE}")
        nominated = state.nominator.node_of(pod.uid)
        if ctx.rejection is not None:  # refused as a whole (a claim not found): no node helps
            return self._nothing(state, pod, nominated, "", in_flight=False)
        if nominated is not None and self._still_preempting(ctx, state, nominated, filters):
            return Attempt(WAITING, f"preemption: {WAITING_MESSAGE}")
        nodes = [node for node in state.nodes.values() if node.facts is not None]
        if not any(_holds_lower(node, pod.priority) for node in nodes):
            # The common case (one priority everywhere): nothing to take, no filter to run.
            return self._nothing(state, pod, nominated, "", in_flight=False)
        statuses: Counter[str] = Counter()
        potential: list[NodeInfo] = []
        for node in nodes:
            if removing_pods_may_help(ctx, node, filters):
                potential.append(node)
            else:
                statuses[NOT_HELPFUL] += 1
        candidates, tried, in_flight = self._dry_run(
            ctx, potential, filters, budgets, now, statuses
        )
        if not candidates:
            message = f"preemption: {unschedulable_message(len(nodes), statuses)}" if tried else ""
            return self._nothing(state, pod, nominated, message, in_flight=in_flight)
        best = pick(candidates, now=now)
        cleared = tuple(p for p in state.nominator.on_node(best.node) if p.priority < pod.priority)
        for other in cleared:
            state.nominator.drop(other.uid)
            self._victims_of.pop(other.uid, None)
        state.nominator.nominate(pod, best.node)
        self._victims_of[pod.uid] = (best.node, frozenset(v.uid for v in best.victims))
        plan = Plan(pod, best.node, best.victims, best.budget_violations, cleared)
        message = (
            f"preemption: nominated node {best.node}, preempting {len(best.victims)} pod(s) "
            f"of lower priority: {describe_victims(best.victims)}."
        )
        return Attempt(PREEMPTED, message, plan)

    def _nothing(
        self,
        state: ClusterState,
        pod: PodFacts,
        nominated: str | None,
        message: str,
        *,
        in_flight: bool,
    ) -> Attempt:
        """No candidate: the pod's nomination, if any, no longer helps."""
        if nominated is not None:
            state.nominator.drop(pod.uid)
        self._victims_of.pop(pod.uid, None)
        return Attempt(
            NO_CANDIDATE, message, dropped_nomination=nominated is not None, retry_soon=in_flight
        )

    def preemptors(self) -> list[str]:
        """UIDs of the pods it remembers victims for."""
        return list(self._victims_of)

    def forget(self, uid: str) -> None:
        """The pod is bound or gone, or its preemption failed: nothing to wait for."""
        self._victims_of.pop(uid, None)

    def _dry_run(
        self,
        ctx: PodContext,
        potential: list[NodeInfo],
        filters: Sequence[FilterPlugin],
        budgets: Sequence[Budget],
        now: float,
        statuses: Counter[str],
    ) -> tuple[list[Candidate], bool, bool]:
        """Candidates; whether any node had pods to take away; whether a lower-priority pod
        is in flight on a node that could not be made to fit."""
        candidates: list[Candidate] = []
        tried = in_flight = False
        if not potential:
            return candidates, tried, in_flight
        wanted = candidates_to_find(len(potential))
        start = self._offset % len(potential)
        sparing = examined = 0
        for i in range(len(potential)):
            node = potential[(start + i) % len(potential)]
            examined += 1
            found = select_victims(ctx, node, filters, budgets, now=now)
            if isinstance(found, Candidate):
                candidates.append(found)
                sparing += found.budget_violations == 0
                if sparing and len(candidates) >= wanted:
                    break
                continue
            statuses.update(found)
            tried = tried or found != (NO_VICTIMS,)
            in_flight = in_flight or any(
                p.priority < ctx.pod.priority for p in node.assumed.values()
            )
        self._offset += examined
        return candidates, tried, in_flight

    def _still_preempting(
        self, ctx: PodContext, state: ClusterState, node_name: str, filters: Sequence[FilterPlugin]
    ) -> bool:
        """kube's ``PodEligibleToPreemptOthers`` for a nominated pod: a lower-priority pod
        preempted on the nominated node is still there (terminating, or its deletion is in
        flight) or its reservation still is: wait for it, unless the node is of no use now."""
        node = state.nodes.get(node_name)
        if node is None or node.facts is None or not removing_pods_may_help(ctx, node, filters):
            return False
        pod = ctx.pod
        if any(
            p.priority < pod.priority and p.deleting and p.preempted for p in node.pods.values()
        ):
            return True
        where, victims = self._victims_of.get(pod.uid, ("", frozenset()))
        return where == node_name and any(v in node.pods or node.holds(v) for v in victims)
