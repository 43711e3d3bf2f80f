"""The writes of a preemption, off the scheduling thread (kube's ``prepareCandidate``).

For each victim not already terminating, one task on the binder's workers::

    PATCH pods/status   DisruptionTarget=True, reason PreemptionByScheduler   (UID-guarded)
    DELETE pod          graceful: its default grace period, UID precondition
    Event "Preempted"   "Preempted by pod <uid> on node <node>: ..." on the victim

and for each lower-priority pod whose nomination to that node no longer holds, a status patch
clearing ``nominatedNodeName``. The preemptor's own nomination is written with its
``PodScheduled`` condition by the scheduling loop.

A victim already gone (404, or its name now another pod's: 409) is what was wanted. Any other
failure ends that victim's task with one log line and ``on_failed(preemptor)``: the loop then
forgets the attempt and sends the preemptor back to try again. Transient errors are retried
first. The victim keeps its bandwidth until it is gone: the scheduler counts a terminating pod
as placed, and the accounting controller releases its reservation only once it is deleted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from kubeio.errors import ApiError, Conflict, Invalid, NotFound, TransientError
from kubeio.events import NORMAL, EventRecorder, ObjectRef
from kubeio.resources import PODS
from kubeio.rest import STRATEGIC_MERGE_PATCH, KubeApi
from kubeio.retry import wait_retry_after
from scheduler.podfacts import DISRUPTION_TARGET, PREEMPTION_BY_SCHEDULER, PodFacts
from scheduler.preemption.evaluator import Plan

log = structlog.get_logger("scheduler.preemption")

PREEMPTED = "Preempted"


def preempted_message(plan: Plan, victim: PodFacts) -> str:
    """kube's wording, then the bandwidth the room is for and what the victim held."""
    preemptor = plan.preemptor
    needs = "no bandwidth" if preemptor.bandwidth.is_zero() else preemptor.bandwidth.describe()
    held = "no bandwidth" if victim.bandwidth.is_zero() else victim.bandwidth.describe()
    return (
        f"Preempted by pod {preemptor.uid} on node {plan.node}: room for {preemptor.key} "
        f"(priority {preemptor.priority}, needs {needs}); this pod held {held}"
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Preempter:
    def __init__(
        self,
        api: KubeApi,
        events: EventRecorder,
        run_later: Callable[[Callable[[], None]], None],
        *,
        scheduler_name: str,
        on_failed: Callable[[PodFacts], None],
    ) -> None:
        self._api = api
        self._events = events
        self._run_later = run_later
        self._scheduler_name = scheduler_name
        self._on_failed = on_failed

    def carry_out(self, plan: Plan) -> None:
        log.info(
            "preempting",
            pod=plan.preemptor.key,
            node=plan.node,
            victims=[victim.key for victim in plan.victims],
            budget_violations=plan.budget_violations,
        )
        for victim in plan.victims:
            if not victim.deleting:  # its graceful deletion has begun: nothing to send
                self._run_later(functools.partial(self._preempt, plan, victim))
        for pod in plan.cleared:
            self._run_later(functools.partial(self.clear_nomination, pod))

    def clear_nomination(self, pod: PodFacts) -> None:
        try:
            self._retrying(
                lambda: self._api.patch(
                    PODS.path(namespace=pod.namespace, name=pod.name, subresource="status"),
                    {"metadata": {"uid": pod.uid}, "status": {"nominatedNodeName": None}},
                    STRATEGIC_MERGE_PATCH,
                )
            )
        except (NotFound, Conflict, Invalid):
            pass
        except ApiError as error:
            log.warning("nomination_not_cleared", pod=pod.key, error=str(error))

    def _preempt(self, plan: Plan, victim: PodFacts) -> None:
        path = PODS.path(namespace=victim.namespace, name=victim.name)
        condition = {
            "type": DISRUPTION_TARGET,
            "status": "True",
            "reason": PREEMPTION_BY_SCHEDULER,
            "message": f"{self._scheduler_name}: preempting to accommodate a higher priority pod",
            "lastTransitionTime": _now(),
        }
        try:
            self._retrying(
                lambda: self._api.patch(
                    PODS.path(namespace=victim.namespace, name=victim.name, subresource="status"),
                    {"metadata": {"uid": victim.uid}, "status": {"conditions": [condition]}},
                    STRATEGIC_MERGE_PATCH,
                )
            )
            self._retrying(lambda: self._api.delete(path, preconditions={"uid": victim.uid}))
        except (NotFound, Conflict, Invalid):
            log.info("victim_already_gone", pod=victim.key, preemptor=plan.preemptor.key)
            return
        except ApiError as error:
            log.warning(
                "preemption_failed", pod=victim.key, preemptor=plan.preemptor.key, error=str(error)
            )
            self._on_failed(plan.preemptor)
            return
        except Exception:
            log.exception("preemption_failed", pod=victim.key, preemptor=plan.preemptor.key)
            self._on_failed(plan.preemptor)
            return
        ref = ObjectRef("Pod", "v1", victim.name, victim.uid, victim.namespace)
        self._events.record(ref, NORMAL, PREEMPTED, preempted_message(plan, victim))
        log.info(
            "pod_preempted",
            pod=victim.key,
            priority=victim.priority,
            node=plan.node,
            preemptor=plan.preemptor.key,
            ul_mbps=victim.bandwidth.ul_mbps,
            dl_mbps=victim.bandwidth.dl_mbps,
        )

    @staticmethod
    def _retrying(call: Callable[[], object]) -> None:
        for attempt in Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait_retry_after(wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.1)),
            stop=stop_after_attempt(6),
            reraise=True,
        ):
            with attempt:
                call()
