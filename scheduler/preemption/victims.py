"""Which pods to preempt on one node, and which node to preempt on: pure, no I/O.

``select_victims`` is kube-scheduler's ``SelectVictimsOnNode``: take every bound pod of
strictly lower priority off the node (a ``WhatIf``); if the pod still does not fit, the node
is no candidate. Otherwise put them back one at a time, the most important first (higher
priority, then the longest running), those whose loss would break a PodDisruptionBudget before
the others; each one the pod still fits beside stays, each other one is a victim. Filters run
with the pods nominated to the node, as when scheduling. Pods assumed on the node (their
binding in flight) are never victims.

``pick`` is ``pickOneNodeForPreemption``, in its order:

1. fewest PodDisruptionBudget violations;
2. lowest priority of the most important victim;
3. smallest sum of victims' priorities (each shifted by 2^31, so fewer negative ones win);
4. fewest victims;
5. latest start among the most important victims (a pod not started counts as now);
6. then, where kube takes whichever node came first: the node with the most of the pod's
   siblings (co-location), then the node name.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bandwidth.model import parse_time
from scheduler.decide import filter_node
from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FilterPlugin, PodContext, Reasons
from scheduler.podfacts import PodFacts
from scheduler.preemption.budgets import Budget, split_by_budget
from scheduler.preemption.whatif import WhatIf

NO_VICTIMS = "No preemption victims found for incoming pod"
PRIORITY_SHIFT = 2**31


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node where preempting ``victims`` (most important first) lets the pod fit."""

    node: str
    victims: tuple[PodFacts, ...]
    budget_violations: int = 0
    siblings: int = 0
    """The pod's siblings on the node that would stay: the last tie-break."""


def start_seconds(pod: PodFacts, now: float) -> float:
    """When the pod started (``status.startTime``); ``now`` when it has not."""
    started = parse_time(pod.started)
    return started.timestamp() if started is not None else now


def importance(pod: PodFacts, now: float) -> tuple[int, float, str]:
    """Sort key, most important first: higher priority, then earlier start."""
    return (-pod.priority, start_seconds(pod, now), pod.key)


def select_victims(
    ctx: PodContext,
    node: NodeInfo,
    filters: Sequence[FilterPlugin],
    budgets: Sequence[Budget],
    *,
    now: float | None = None,
) -> Candidate | Reasons:
    """The fewest pods to preempt on ``node`` for ``ctx.pod``, or why the node is none."""
    now = time.time() if now is None else now
    pod = ctx.pod
    potential = sorted(
        (p for p in node.pods.values() if p.priority < pod.priority),
        key=lambda p: importance(p, now),
    )
    if not potential:
        return (NO_VICTIMS,)
    what_if = WhatIf(ctx, node, filters)
    for victim in potential:
        what_if.remove(victim)
    refused = filter_node(what_if.ctx, what_if.node, filters)
    if refused:
        return refused
    violating, sparing = split_by_budget(potential, budgets)
    victims: list[PodFacts] = []
    violations = 0
    for group, breaks_budget in ((violating, True), (sparing, False)):
        for candidate in group:
            what_if.add(candidate)
            if filter_node(what_if.ctx, what_if.node, filters):
                what_if.remove(candidate)
                victims.append(candidate)
                violations += breaks_budget
    if not victims:  # fits beside all of them: nothing to preempt here
        return (NO_VICTIMS,)
    victims.sort(key=lambda p: importance(p, now))
    siblings = node.siblings.get(ctx.workload, 0) if ctx.workload is not None else 0
    return Candidate(node.name, tuple(victims), violations, siblings)


def pick(candidates: Sequence[Candidate], *, now: float | None = None) -> Candidate:
    """The node to preempt on, in kube-scheduler's order then ours (module docstring)."""
    now = time.time() if now is None else now
    criteria: list[Callable[[Candidate], float]] = [
        lambda c: -c.budget_violations,
        lambda c: -c.victims[0].priority,
        lambda c: -sum(v.priority + PRIORITY_SHIFT for v in c.victims),
        lambda c: -len(c.victims),
        lambda c: _earliest_start_of_most_important(c, now),
        lambda c: c.siblings,
    ]
    remaining = list(candidates)
    for score in criteria:
        if len(remaining) == 1:
            break
        best = max(score(c) for c in remaining)
        remaining = [c for c in remaining if score(c) == best]
    return min(remaining, key=lambda c: c.node)


def _earliest_start_of_most_important(candidate: Candidate, now: float) -> float:
    top = candidate.victims[0].priority
    earliest = math.inf
    for victim in candidate.victims:
        if victim.priority == top:
            earliest = min(earliest, start_seconds(victim, now))
    return earliest
