"""Reserve bandwidth in the node's Bandwidth CR, then bind the pod: off the scheduling thread.

Per node, one reservation write is in flight at a time; decisions for that node that arrive
meanwhile are coalesced into the next write, one PATCH for many pods. Every write tests the
spec generation it was computed from (``kubeio.guarded``), so the apiserver refuses it if
anyone — another scheduler, the accounting controller, a user — changed the spec since; status
writes do not count. On a conflict the CR is
read again, every pod in the batch is checked again against it, and the write is retried:
two pods are never promised the same megabit.

    submit ─► [pending per node] ─► reserve (PATCH, rv) ─► bind (POST pods/binding, uid)
                                      │ no longer fits           │ fails
                                      │ or node deleted          │ or node deleted
                                      ▼                          ▼
                                   forget + back off          unreserve (PATCH, rv) + forget

Reservations are idempotent by pod UID. A crash between reserve and bind leaves an entry with
``scheduler`` and ``reservedAt`` that the accounting controller releases after a grace period,
unless a replica adopts it first: adopting rewrites ``reservedAt`` (a guarded write like any
other) before binding, so the release and the binding cannot both happen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

import structlog
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from bandwidth.ledger import shortfalls
from bandwidth.model import (
    MalformedBandwidth,
    NodeBandwidth,
    Reservation,
    parse_bandwidth,
    reservations_patch,
)
from kubeio.errors import ApiError, Conflict, NotFound, TransientError
from kubeio.guarded import patch_if_generation
from kubeio.resources import BANDWIDTHS, PODS
from kubeio.rest import KubeApi
from kubeio.retry import wait_retry_after
from scheduler.cluster import ClusterState
from scheduler.plugins.framework import PodContext

log = structlog.get_logger("scheduler.binder")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one pod's placement, reported to the scheduling loop."""

    ctx: PodContext
    node: str
    bound: bool
    retry: bool
    reason: str = ""
    pod_gone: bool = False


OutcomeHandler = Callable[[Outcome], None]


class _Stale(Exception):
    """The cached ledger was stale: read it again before the next attempt."""


class Binder:
    def __init__(
        self,
        api: KubeApi,
        state: ClusterState,
        on_outcome: OutcomeHandler,
        *,
        scheduler_name: str,
        workers: int = 16,
        on_conflict: Callable[[], None] = lambda: None,
    ) -> None:
        self._api = api
        self._state = state
        self._on_outcome = on_outcome
        self._scheduler_name = scheduler_name
        self._on_conflict = on_conflict
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="bind")
        self._lock = threading.Lock()
        self._pending: dict[str, list[PodContext]] = {}
        self._writing: set[str] = set()
        self._written: dict[str, NodeBandwidth] = {}

    def submit(self, ctx: PodContext, node: str) -> None:
        with self._lock:
            self._pending.setdefault(node, []).append(ctx)
            if node in self._writing:
                return
            self._writing.add(node)
        self._pool.submit(self._drain, node)

    def run_later(self, work: Callable[[], None]) -> None:
        """Run a small write (a pod condition) on the binder's workers, off the loop."""
        self._pool.submit(work)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _drain(self, node: str) -> None:
        while True:
            with self._lock:
                batch = self._pending.pop(node, [])
                if not batch:
                    self._writing.discard(node)
                    return
            try:
                if self._state.node_exists(node):
                    accepted, rejected = self._reserve(node, batch)
                else:  # deleted since the decision: decide again
                    accepted, rejected = [], [(ctx, f"node {node} was deleted") for ctx in batch]
            except Exception as error:  # never lose a pod: everything unknown goes back
                if isinstance(error, ApiError):  # the apiserver said no, or is away: one line
                    log.warning("reserve_failed", node=node, pods=len(batch), error=str(error))
                else:  # a bug: keep the stack
                    log.exception("reserve_failed", node=node, pods=len(batch))
                accepted, rejected = [], [(ctx, f"reservation failed: {error}") for ctx in batch]
            for ctx, reason in rejected:
                self._finish(Outcome(ctx, node, bound=False, retry=True, reason=reason))
            for ctx in accepted:
                self._pool.submit(self._bind, ctx, node)

    # Reserve ---------------------------------------------------------------------------------

    def _latest_ledger(self, node: str) -> NodeBandwidth | None:
        """The newer spec of the watch cache's copy and the one our own last write returned.

        Without this every second batch for a node would be computed on the cache's copy,
        which lags our own write, and lose its compare-and-swap."""
        cached = self._state.ledger_of(node)
        with self._lock:
            written = self._written.get(node)
        if written is None or cached is None:
            return cached
        return written if written.generation > cached.generation else cached

    def _reserve(
        self, node: str, batch: list[PodContext]
    ) -> tuple[list[PodContext], list[tuple[PodContext, str]]]:
        return self._on_fresh_ledger(
            node, lambda ledger: self._write_batch(node, ledger, batch), attempts=12
        )

    def _on_fresh_ledger(
        self, node: str, write: Callable[[NodeBandwidth | None], T], *, attempts: int
    ) -> T:
        """Run ``write`` on the newest ledger known; after a lost race, read it again and
        retry (jittered backoff), as long as the race keeps being lost."""
        ledger = self._latest_ledger(node)
        for attempt in Retrying(
            retry=retry_if_exception_type((Conflict, TransientError, _Stale)),
            wait=wait_retry_after(wait_exponential_jitter(multiplier=0.02, max=1.0, jitter=0.05)),
            stop=stop_after_attempt(attempts),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    ledger = self._read_ledger(node)
                return write(ledger)
        raise AssertionError("unreachable: Retrying either returns or re-raises")

    def _read_ledger(self, node: str) -> NodeBandwidth | None:
        try:
            return parse_bandwidth(self._api.get(BANDWIDTHS.path(name=node)))
        except NotFound:
            return None
        except MalformedBandwidth:
            return None

    def _write_batch(
        self, node: str, ledger: NodeBandwidth | None, batch: list[PodContext]
    ) -> tuple[list[PodContext], list[tuple[PodContext, str]]]:
        accepted: list[PodContext] = []
        rejected: list[tuple[PodContext, str]] = []
        needs_ledger = [ctx for ctx in batch if not ctx.pod.bandwidth.is_zero()]
        accepted.extend(ctx for ctx in batch if ctx.pod.bandwidth.is_zero())
        if not needs_ledger:
            return accepted, rejected
        if ledger is None:
            rejected.extend((ctx, "node has no Bandwidth object") for ctx in needs_ledger)
            return accepted, rejected
        reservations = dict(ledger.reservations)
        used = ledger.reserved()
        for uid, request in self._state.bound_pod_charges(node).items():
            if uid not in reservations:
                used = used + request.charge()
        now = datetime.now(UTC)
        added = False
        for ctx in needs_ledger:
            pod = ctx.pod
            held = reservations.get(pod.uid)
            if held is not None:
                # Held already (left by a replica that stopped before binding): renew it in
                # this guarded write, so that a NeverBound release decided on the old
                # reservedAt fails its own generation test instead of racing our binding.
                reservations[pod.uid] = replace(
                    held, scheduler=self._scheduler_name, reserved_at=now
                )
                accepted.append(ctx)
                added = True
                continue
            short = shortfalls(ledger.capacity, used, pod.bandwidth)
            if short:
                rejected.append((ctx, f"bandwidth taken meanwhile: insufficient {short[0]}"))
                continue
            reservations[pod.uid] = Reservation(
                pod_uid=pod.uid,
                pod_name=pod.name,
                pod_namespace=pod.namespace,
                request=pod.bandwidth,
                scheduler=self._scheduler_name,
                reserved_at=now,
            )
            used = used + pod.bandwidth.charge()
            accepted.append(ctx)
            added = True
        if added:
            self._patch(node, ledger, reservations.values())
        return accepted, rejected

    def _patch(self, node: str, ledger: NodeBandwidth, reservations: Iterable[Reservation]) -> None:
        try:
            written = patch_if_generation(
                self._api,
                BANDWIDTHS.path(name=node),
                ledger.generation,
                reservations_patch(reservations),
            )
        except Conflict:
            self._on_conflict()
            raise
        except NotFound as error:
            raise _Stale() from error
        try:
            parsed = parse_bandwidth(written)
        except MalformedBandwidth:
            return
        with self._lock:
            self._written[node] = parsed

    def _unreserve(self, node: str, uid: str) -> None:
        def remove(ledger: NodeBandwidth | None) -> None:
            if ledger is not None and uid in ledger.reservations:
                remaining = [r for key, r in ledger.reservations.items() if key != uid]
                self._patch(node, ledger, remaining)

        self._on_fresh_ledger(node, remove, attempts=20)

    # Bind ------------------------------------------------------------------------------------

    def _bind(self, ctx: PodContext, node: str) -> None:
        pod = ctx.pod
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        started = time.monotonic()
        if not self._state.node_exists(node):
            # Deleted since the decision: binding would still succeed (the apiserver does not
            # check the node) and strand the pod on a node that is gone.
            self._after_failed_bind(ctx, node, ApiError(0, f"node {node} was deleted"))
            return
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(TransientError),
                wait=wait_retry_after(wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.1)),
                stop=stop_after_attempt(6),
                reraise=True,
            ):
                with attempt:
                    self._api.create(
                        PODS.path(namespace=pod.namespace, name=pod.name, subresource="binding"),
                        body,
                    )
        except ApiError as error:
            self._after_failed_bind(ctx, node, error)
            return
        except Exception as error:
            log.exception("bind_failed", pod=pod.key, node=node)
            self._after_failed_bind(ctx, node, ApiError(0, str(error)))
            return
        self._finish(
            Outcome(ctx, node, bound=True, retry=False, reason=f"{time.monotonic() - started:.3f}")
        )

    def _after_failed_bind(self, ctx: PodContext, node: str, error: ApiError) -> None:
        """Release the reservation unless the pod is bound to ``node`` after all.

        Another replica of this scheduler may have reserved the same pod on the same node
        (the reservation is idempotent by UID) and bound it first; its reservation is the one
        this replica would otherwise remove.
        """
        pod = ctx.pod
        bound_to = self._bound_node(pod.namespace, pod.name, pod.uid)
        gone = bound_to is not None
        log.info("bind_failed", pod=pod.key, node=node, error=str(error), now_on=bound_to or None)
        try:
            if not pod.bandwidth.is_zero() and bound_to != node:
                self._unreserve(node, pod.uid)
        except ApiError as unreserve_error:
            # The accounting controller releases it as stale after the grace period.
            log.warning("unreserve_failed", pod=pod.key, node=node, error=str(unreserve_error))
        except Exception:
            log.exception("unreserve_failed", pod=pod.key, node=node)
        self._finish(
            Outcome(ctx, node, bound=False, retry=not gone, reason=str(error), pod_gone=gone)
        )

    def _bound_node(self, namespace: str, name: str, uid: str) -> str | None:
        """The node the pod is bound to; "" when it is gone; None while it still waits."""
        try:
            current = self._api.get(PODS.path(namespace=namespace, name=name))
        except NotFound:
            return ""
        except ApiError:
            return None
        if (current.get("metadata") or {}).get("uid") != uid:
            return ""
        return (current.get("spec") or {}).get("nodeName") or None

    def _finish(self, outcome: Outcome) -> None:
        if not outcome.bound:
            self._state.forget(outcome.ctx.pod.uid)
        try:
            self._on_outcome(outcome)
        except Exception:
            log.exception("outcome_handler_failed", pod=outcome.ctx.pod.key)
