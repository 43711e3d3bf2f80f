"""The scheduler's verdict on one pod, by one code path for everyone who asks.

The scheduling loop acts on it (bind, or an Event and ``PodScheduled=False``);
``kubectl bandwidth what-if`` and ``explain`` report it. Because both call :func:`judge`, the
plugin says what the scheduler will do: the same refusals, the same node, the same message::

    pod ──refusal()──► refused before any filter:  InvalidBandwidthRequest
     │                                              UnsupportedConstraint
     └──Decider.choose() on the state──► placed on a node  (assumed, when asked)
                                      └► FailedScheduling "0/N nodes are available: ..."

A check that turns a pod away before any node is looked at belongs in :func:`refusal`; one
that needs the cluster's state to say so (a claim not found, a volume of a kind not evaluated)
is the context's ``rejection``, which ``Decider.choose`` honours; a check per node is a filter
plugin (``scheduler.plugins.registry``). Pure: no client calls;
:func:`judge` reads and, with ``assume``, updates the in-memory ``ClusterState``.
"""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.cluster import ClusterState
from scheduler.decide import Decision
from scheduler.decider import Decider
from scheduler.explain import unschedulable_message
from scheduler.plugins.framework import PodContext
from scheduler.podfacts import PodFacts

INVALID_REQUEST = "InvalidBandwidthRequest"
UNSUPPORTED_CONSTRAINT = "UnsupportedConstraint"
UNSCHEDULABLE = "FailedScheduling"
LEDGER_FULL = "BandwidthLedgerFull"
"""Decided, but the node's ledger could not take the reservation (``scheduler.binder``)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Placed on ``node``, or not, with the Event ``reason`` and ``message`` the scheduler
    writes. ``decision`` is None when the pod was refused before any filter ran."""

    node: str | None
    reason: str = ""
    message: str = ""
    ctx: PodContext | None = None
    decision: Decision | None = None

    @property
    def placed(self) -> bool:
        return self.node is not None

    @property
    def refused(self) -> bool:
        """Turned away before any node was looked at."""
        return self.node is None and self.decision is None


def unsupported_message(constraints: tuple[str, ...]) -> str:
    return "unsupported scheduling constraint(s): " + ", ".join(constraints)


def refusal(pod: PodFacts) -> Verdict | None:
    """The verdict for a pod no node can take whatever the cluster, else None."""
    if pod.invalid:
        return Verdict(None, INVALID_REQUEST, pod.invalid)
    if pod.unsupported:
        return Verdict(None, UNSUPPORTED_CONSTRAINT, unsupported_message(pod.unsupported))
    return None


def judge(state: ClusterState, decider: Decider, pod: PodFacts, *, assume: bool) -> Verdict:
    """The verdict on ``pod`` against ``state``; with ``assume`` a chosen node is assumed in
    the same step (under ``state.lock``), so the next pod sees it taken."""
    refused = refusal(pod)
    if refused is not None:
        return refused
    with state.lock:
        ctx = state.context_for(pod)
        decision = decider.choose(state, ctx)
        if assume and decision.node is not None:
            state.assume(ctx, decision.node)
    if decision.node is not None:
        return Verdict(decision.node, ctx=ctx, decision=decision)
    rejection = decision.rejection
    if rejection is not None and rejection.unsupported:
        message = unsupported_message((rejection.reason,))
        return Verdict(None, UNSUPPORTED_CONSTRAINT, message, ctx=ctx, decision=decision)
    message = unschedulable_message(
        decision.nodes_considered, decision.reasons, rejection.reason if rejection else ""
    )
    return Verdict(None, UNSCHEDULABLE, message, ctx=ctx, decision=decision)
