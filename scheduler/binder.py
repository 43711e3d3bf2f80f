"""Reserve bandwidth in the node's Bandwidth CR, then bind the pod: off the scheduling thread.

Per node, one reservation write is in flight at a time; decisions for that node that arrive
meanwhile are coalesced into the next write, one PATCH for many pods. Every write tests the
object's UID and the spec generation it was computed from (``kubeio.guarded``), so the
apiserver refuses it if anyone — another scheduler, the accounting controller, a user —
changed the spec or made the object again since; status writes do not count. On a conflict
the CR is read again, every pod in the batch is checked again against it, and the write is
retried: two pods are never promised the same megabit.

    submit ─► [pending per node] ─► reserve (PATCH, uid+generation) ─► bind (POST pods/binding,
                                      │ no longer fits                   │  uid+resourceVersion)
                                      │ or node deleted                  │ fails
                                      ▼                                  ▼
                                   forget + back off          read the pod, then:
                                                                bound here: done (answer lost)
                                                                gone or bound elsewhere:
                                                                  unreserve + forget
                                                                pending, a binding of ours
                                                                maybe landing, or unreadable:
                                                                  keep the reservation,
                                                                  forget + retry (adopts it)
                                                                pending, all refused:
                                                                  unreserve + forget + retry

A pod with volumes to bind goes through ``prebind`` (``scheduler.volumebinder``) between
reserve and bind, on its workers; its failure is handled as a failed bind.

Reservations are idempotent by pod UID. A reservation left unbound (a crash between reserve
and bind, a binding that failed with the pod still pending) is adopted by the next decision
for the pod, which renews ``reservedAt`` in a guarded write, or released by the accounting
controller after a grace period — behind a fence on the pod (``kubeio.fencing``): bindings
carry the pod's resourceVersion as a precondition, so one that was still on its way fails, and
the binder reads the fence and does not bind. A binding refused because the pod merely changed
is sent again at the newer version. Every path of a binding ends in ``_finish``, which never
raises: no pod is left in flight or assumed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol, TypeVar

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
from kubeio.errors import (
    ApiError,
    Conflict,
    Invalid,
    NotFound,
    TooLarge,
    TooManyRequests,
    TransientError,
)
from kubeio.fencing import fenced
from kubeio.guarded import apply_if_spec_unchanged, patch_if_spec_unchanged
from kubeio.liveness import Tasks
from kubeio.resources import BANDWIDTHS, PODS
from kubeio.rest import JSON, KubeApi
from kubeio.retry import wait_retry_after
from scheduler.cluster import ClusterState
from scheduler.plugins.framework import PodContext
from scheduler.podfacts import PodFacts

log = structlog.get_logger("scheduler.binder")

# A binding refused because the pod changed since it was read is sent again at the newer
# resourceVersion, so many times at most (the pod's own status writes can race it).
_BIND_ATTEMPTS = 5

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
    unschedulable: bool = False
    """Not worth retrying until the cluster changes (the node's ledger is full): ``reason``
    says why, for the pod's Warning event."""


OutcomeHandler = Callable[[Outcome], None]


class _Stale(Exception):
    """The cached ledger was stale: read it again before the next attempt."""


class PreBind(Protocol):
    def start(
        self,
        ctx: PodContext,
        node: str,
        then: Callable[[], None],
        failed: Callable[[ApiError], None],
    ) -> bool:
        """Begin what must be written before the pod is bound to ``node``, then call ``then``
        (or ``failed``); return False, calling neither, when there is nothing to write."""
        ...


@dataclass(slots=True)
class _Sent:
    """What the attempts of one binding may have done without our hearing so."""

    maybe_applied: bool = False


class LedgerFull(Exception):
    """The apiserver refused the node's ledger as too large (etcd's request limit, or the
    CRD's ``maxItems``): the same write would fail again."""

    def __init__(self, node: str, held: int, detail: str) -> None:
        super().__init__(
            f"node {node}'s Bandwidth object cannot hold more reservations ({held} held): {detail}"
        )
        self.node = node
        self.held = held


Refusal = tuple[PodContext, str, bool]
"""A pod the reservation write refused: why, and whether only a cluster change can help."""


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
        prebind: PreBind | None = None,
        on_ledger_full: Callable[[LedgerFull], None] = lambda error: None,
        observe: Callable[[str, float], None] = lambda stage, seconds: None,
    ) -> None:
        self._api = api
        self._prebind = prebind
        self._state = state
        self._on_outcome = on_outcome
        self._scheduler_name = scheduler_name
        self._on_conflict = on_conflict
        self._on_ledger_full = on_ledger_full
        self._observe = observe
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="bind")
        # A reservation's retries, then a binding's, each request at most 30 s: far less.
        self.tasks = Tasks("binder", stall_after=600.0)
        self._lock = threading.Lock()
        # Per node, the pods waiting for its next reservation write, each with when it was
        # handed over (monotonic), for the ``reserve`` stage.
        self._pending: dict[str, list[tuple[PodContext, float]]] = {}
        self._writing: set[str] = set()
        # Pods a binding of ours may still land for (sent, answer never heard): their
        # reservation is never released by us, only adopted or released behind a fence.
        self._in_doubt: set[str] = set()

    def submit(self, ctx: PodContext, node: str, handed: float | None = None) -> None:
        """Reserve for and bind the pod decided onto ``node`` (handed over at ``handed``,
        monotonic; now if not given)."""
        handed = time.monotonic() if handed is None else handed
        with self._lock:
            self._pending.setdefault(node, []).append((ctx, handed))
            if node in self._writing:
                return
            self._writing.add(node)
        self._pool.submit(self._timed, f"reserving on {node}", self._drain, node)

    def _timed(self, what: str, work: Callable[..., None], *args: object) -> None:
        with self.tasks.task(what):
            work(*args)

    def run_later(self, work: Callable[[], None]) -> None:
        """Run a small write (a pod condition) on the binder's workers, off the loop."""
        self._pool.submit(self._timed, "a background write", _logged, work)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _drain(self, node: str) -> None:
        while True:
            with self._lock:
                handed = self._pending.pop(node, [])
                if not handed:
                    self._writing.discard(node)
                    return
            batch = [ctx for ctx, _ in handed]
            accepted: list[tuple[PodContext, str]] = []
            rejected: list[Refusal]
            try:
                if self._state.node_exists(node):
                    accepted, rejected = self._reserve(node, batch)
                else:  # deleted since the decision: decide again
                    rejected = [(ctx, f"node {node} was deleted", False) for ctx in batch]
            except LedgerFull as full:  # never retried: the node takes no new entry for now
                log.error("bandwidth_ledger_full", node=node, held=full.held, error=str(full))
                self._state.limit_ledger(node, full.held)
                self._on_ledger_full(full)
                rejected = [(ctx, str(full), True) for ctx in batch]
            except Exception as error:  # never lose a pod: everything unknown goes back
                if isinstance(error, ApiError):  # the apiserver said no, or is away: one line
                    log.warning("reserve_failed", node=node, pods=len(batch), error=str(error))
                else:  # a bug: keep the stack
                    log.exception("reserve_failed", node=node, pods=len(batch))
                rejected = [(ctx, f"reservation failed: {error}", False) for ctx in batch]
            for ctx, reason, unschedulable in rejected:
                self._finish(
                    Outcome(
                        ctx,
                        node,
                        bound=False,
                        retry=True,
                        reason=reason,
                        unschedulable=unschedulable,
                    )
                )
            reserved = time.monotonic()
            handed_at = {ctx.pod.uid: at for ctx, at in handed}
            for ctx, token in accepted:
                self._observe("reserve", reserved - handed_at[ctx.pod.uid])
                self._after_reserve(ctx, node, token, reserved)

    def _after_reserve(self, ctx: PodContext, node: str, token: str, reserved: float) -> None:
        """Bind now, or once the pre-bind writes (volumes) are done."""

        def bind() -> None:
            try:
                self._pool.submit(
                    self._timed, f"binding {ctx.pod.key}", self._bind, ctx, node, token, reserved
                )
            except RuntimeError as error:  # shutting down: the pod goes back, unbound
                self._finish(Outcome(ctx, node, bound=False, retry=True, reason=str(error)))

        def failed(error: ApiError) -> None:
            outcome = Outcome(ctx, node, bound=False, retry=True, reason=str(error))
            try:
                outcome = self._after_failed_bind(ctx, node, error, time.monotonic(), _Sent())
            except Exception:  # a bug: the pod goes back all the same, with the stack
                log.exception("prebind_cleanup_failed", pod=ctx.pod.key, node=node)
            finally:
                self._finish(outcome)

        if self._prebind is None or not self._prebind.start(ctx, node, bind, failed):
            bind()

    # Reserve ---------------------------------------------------------------------------------

    def _reserve(
        self, node: str, batch: list[PodContext]
    ) -> tuple[list[tuple[PodContext, str]], list[Refusal]]:
        """The pods reserved, each with its reservation's fence token ("" without bandwidth),
        and the pods refused, each with the reason."""
        return self._on_fresh_ledger(
            node, lambda ledger: self._write_batch(node, ledger, batch), attempts=12
        )

    def _on_fresh_ledger(
        self, node: str, write: Callable[[NodeBandwidth | None], T], *, attempts: int
    ) -> T:
        """Run ``write`` on the newest ledger known; after a lost race, read it again and
        retry (jittered backoff), as long as the race keeps being lost."""
        # The watch's copy, or the one our own last write committed if that is newer
        # (``ClusterState.ledger_written``).
        ledger = self._state.ledger_of(node)
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
    ) -> tuple[list[tuple[PodContext, str]], list[Refusal]]:
        accepted: list[tuple[PodContext, str]] = []
        rejected: list[Refusal] = []
        needs_ledger = [ctx for ctx in batch if not ctx.pod.bandwidth.is_zero()]
        accepted.extend((ctx, "") for ctx in batch if ctx.pod.bandwidth.is_zero())
        if not needs_ledger:
            return accepted, rejected
        if ledger is None:
            rejected.extend((ctx, "node has no Bandwidth object", False) for ctx in needs_ledger)
            return accepted, rejected
        room = self._state.ledger_limit(node) - len(ledger.reservations)
        reservations = dict(ledger.reservations)
        used = ledger.reserved() + self._state.dra_usage(node)
        for uid, request in self._state.bound_pod_charges(node).items():
            if uid not in reservations:
                used = used + request.charge()
        now = datetime.now(UTC).replace(microsecond=0)  # as stored: see ``_patch``
        added = False
        for ctx in needs_ledger:
            pod = ctx.pod
            held = reservations.get(pod.uid)
            if held is not None:
                # Held already (left by a replica that stopped before binding, or kept after a
                # binding that failed): renew it in this guarded write, so that a NeverBound
                # release decided on the old reservedAt fails its generation test, and a fence
                # written for the old one does not name the new one.
                renewed = replace(held, scheduler=self._scheduler_name, reserved_at=now)
                reservations[pod.uid] = renewed
                accepted.append((ctx, renewed.fence_token(node)))
                added = True
                continue
            short = shortfalls(ledger.capacity, used, pod.bandwidth)
            if short:
                rejected.append((ctx, f"bandwidth taken meanwhile: insufficient {short[0]}", False))
                continue
            if room <= 0:
                count = len(ledger.reservations)
                message = f"node {node}'s Bandwidth object is full ({count} reservations)"
                rejected.append((ctx, message, True))
                continue
            room -= 1
            reservation = Reservation(
                pod_uid=pod.uid,
                pod_name=pod.name,
                pod_namespace=pod.namespace,
                request=pod.bandwidth,
                scheduler=self._scheduler_name,
                reserved_at=now,
            )
            reservations[pod.uid] = reservation
            used = used + pod.bandwidth.charge()
            accepted.append((ctx, reservation.fence_token(node)))
            added = True
        if added:
            try:
                self._patch(node, ledger, reservations.values())
            except TooLarge as error:
                raise LedgerFull(node, len(ledger.reservations), error.message) from error
            except Invalid as error:
                if "must have at most" not in error.message:  # the CRD's maxItems
                    raise
                raise LedgerFull(node, len(ledger.reservations), error.message) from error
        return accepted, rejected

    def _patch(self, node: str, ledger: NodeBandwidth, reservations: Iterable[Reservation]) -> None:
        """Set the node's reservations, guarded by the ledger's UID and generation.

        When the ledger read clean and the list changes, the spec the write commits is
        known: the ledger with this list, one generation on. The answer (the whole object,
        tens of entries in spec and status) is then not decoded nor parsed, and the cluster
        state holds the new spec at once, so its watch event is not parsed either."""
        held = {reservation.pod_uid: reservation for reservation in reservations}
        known = not ledger.problems and held != dict(ledger.reservations)
        path = BANDWIDTHS.path(name=node)
        operations = reservations_patch(held.values())
        try:
            if known:
                apply_if_spec_unchanged(self._api, path, ledger.uid, ledger.generation, operations)
                written = replace(
                    ledger, reservations=held, generation=ledger.generation + 1, resource_version=""
                )
            else:
                answer = patch_if_spec_unchanged(
                    self._api, path, ledger.uid, ledger.generation, operations
                )
                written = parse_bandwidth(answer)
        except Conflict:
            self._on_conflict()
            raise
        except NotFound as error:
            raise _Stale() from error
        except MalformedBandwidth:
            return
        self._state.ledger_written(written)

    def _unreserve(self, node: str, uid: str) -> None:
        def remove(ledger: NodeBandwidth | None) -> None:
            if ledger is not None and uid in ledger.reservations:
                remaining = [r for key, r in ledger.reservations.items() if key != uid]
                self._patch(node, ledger, remaining)

        self._on_fresh_ledger(node, remove, attempts=20)

    # Bind ------------------------------------------------------------------------------------

    def _bind(self, ctx: PodContext, node: str, token: str, reserved: float) -> None:
        """Bind, then report: every path ends in ``_finish``, whatever is raised."""
        outcome = Outcome(ctx, node, bound=False, retry=True, reason="binding not attempted")
        try:
            outcome = self._bind_and_settle(ctx, node, token)
            if outcome.bound:
                self._observe("bind", time.monotonic() - reserved)
        except Exception as error:  # a bug: keep the reservation, retry the pod, keep the stack
            log.exception("bind_crashed", pod=ctx.pod.key, node=node)
            outcome = Outcome(ctx, node, bound=False, retry=True, reason=f"bind crashed: {error}")
        finally:
            self._finish(outcome)

    def _bind_and_settle(self, ctx: PodContext, node: str, token: str) -> Outcome:
        pod = ctx.pod
        started = time.monotonic()
        if not self._state.node_exists(node):
            # Deleted since the decision: binding would still succeed (the apiserver does not
            # check the node) and strand the pod on a node that is gone. Nothing was sent, and
            # no replica adopts a reservation on a node that is gone: undo it.
            self._unreserve_logged(ctx, node, f"node {node} was deleted")
            return Outcome(ctx, node, bound=False, retry=True, reason=f"node {node} was deleted")
        if token and pod.released_reservation == token:
            return self._released_meanwhile(ctx, node)
        version = pod.resource_version
        sent = _Sent()
        for _ in range(_BIND_ATTEMPTS):
            try:
                self._post_binding(pod, node, version, sent)
            except Conflict:
                # The pod changed since it was read (a fence, a label, our own condition) or is
                # bound already: only a fresh read tells which.
                try:
                    current = self._read_pod(pod)
                except ApiError as error:
                    return self._unsure(ctx, node, sent, error)
                settled = self._settled_by(ctx, node, current, started, sent)
                if settled is not None:
                    return settled
                assert current is not None
                if fenced(current, token):
                    return self._released_meanwhile(ctx, node)
                version = str(current["metadata"].get("resourceVersion", ""))
                continue
            except ApiError as error:
                return self._after_failed_bind(ctx, node, error, started, sent)
            return Outcome(ctx, node, bound=True, retry=False, reason=_since(started))
        return self._after_failed_bind(
            ctx,
            node,
            ApiError(409, f"the pod kept changing ({_BIND_ATTEMPTS} attempts)"),
            started,
            sent,
        )

    def _post_binding(self, pod: PodFacts, node: str, version: str, sent: _Sent) -> None:
        """POST pods/binding with the pod's UID and resourceVersion as preconditions, retrying
        what is transient; raises the last ``ApiError``. ``sent`` learns whether an attempt
        may have been applied without our hearing so."""
        metadata = {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid}
        if version:
            metadata["resourceVersion"] = version
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": metadata,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        path = PODS.path(namespace=pod.namespace, name=pod.name, subresource="binding")
        for attempt in Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait_retry_after(wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.1)),
            stop=stop_after_attempt(6),
            reraise=True,
        ):
            with attempt:
                try:
                    self._api.create(path, body)
                except TransientError as error:
                    # A 429 was refused before anything was done; a 5xx or a lost answer
                    # may have been applied.
                    sent.maybe_applied |= not isinstance(error, TooManyRequests)
                    raise

    def _after_failed_bind(
        self, ctx: PodContext, node: str, error: ApiError, started: float, sent: _Sent
    ) -> Outcome:
        """What a failed binding (or pre-binding) leaves, decided on a confirmed read of the
        pod.

        Gone or bound elsewhere, the pod can no longer be bound to ``node``: the reservation
        is released. Bound to ``node``, the binding happened after all: ours, if an attempt of
        ours may have been applied unheard, else another replica's. Still pending: the
        reservation is released only if no binding of ours for the pod may still land (every
        attempt was refused, none lost); otherwise, or when the pod cannot be read, it is
        kept, and the pod retried (it adopts the reservation) or the accounting controller
        releases it behind a fence (``kubeio.fencing``).
        """
        uid = ctx.pod.uid
        try:
            current = self._read_pod(ctx.pod)
        except ApiError as read_error:
            return self._unsure(ctx, node, sent, error, read_error)
        settled = self._settled_by(ctx, node, current, started, sent, error)
        if settled is not None:
            return settled
        with self._lock:
            if sent.maybe_applied:
                self._in_doubt.add(uid)
            in_doubt = uid in self._in_doubt
        if not in_doubt:  # nothing of ours can land: the bandwidth is free for others now
            self._unreserve_logged(ctx, node, f"binding failed: {error}")
        kept = "kept" if in_doubt else "released"
        log.info("bind_failed", pod=ctx.pod.key, node=node, error=str(error), reservation=kept)
        return Outcome(ctx, node, bound=False, retry=True, reason=str(error))

    def _settled_by(
        self,
        ctx: PodContext,
        node: str,
        current: JSON | None,
        started: float,
        sent: _Sent,
        error: ApiError | None = None,
    ) -> Outcome | None:
        """The outcome a fresh read of the pod decides (None while it is still pending)."""
        pod = ctx.pod
        if current is None:
            self._unreserve_logged(ctx, node, "pod deleted")
            return Outcome(ctx, node, bound=False, retry=False, reason="pod deleted", pod_gone=True)
        bound_to = str((current.get("spec") or {}).get("nodeName") or "")
        if bound_to == node:
            if not sent.maybe_applied:  # another replica bound it, to the node reserved
                return Outcome(
                    ctx, node, bound=False, retry=False, reason="bound by another", pod_gone=True
                )
            log.info("bind_confirmed", pod=pod.key, node=node, error=str(error or ""))
            return Outcome(ctx, node, bound=True, retry=False, reason=_since(started))
        if bound_to:
            self._unreserve_logged(ctx, node, f"pod bound to {bound_to}")
            return Outcome(
                ctx, node, bound=False, retry=False, reason=f"bound to {bound_to}", pod_gone=True
            )
        return None

    def _released_meanwhile(self, ctx: PodContext, node: str) -> Outcome:
        log.info("bind_skipped", pod=ctx.pod.key, node=node, reason="reservation released unbound")
        return Outcome(
            ctx, node, bound=False, retry=True, reason="reservation released before binding"
        )

    def _unsure(self, ctx: PodContext, node: str, sent: _Sent, *errors: ApiError) -> Outcome:
        if sent.maybe_applied:
            with self._lock:
                self._in_doubt.add(ctx.pod.uid)
        log.warning(
            "bind_outcome_unknown",
            pod=ctx.pod.key,
            node=node,
            errors=[str(e) for e in errors],
            reservation="kept",
        )
        return Outcome(ctx, node, bound=False, retry=True, reason=str(errors[0]))

    def _read_pod(self, pod: PodFacts) -> JSON | None:
        """The pod as the apiserver has it, None when that UID is gone; raises ``ApiError``
        when it cannot be read, transient failures retried first."""
        for attempt in Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait_retry_after(wait_exponential_jitter(multiplier=0.1, max=1.0, jitter=0.1)),
            stop=stop_after_attempt(4),
            reraise=True,
        ):
            with attempt:
                try:
                    current = self._api.get(PODS.path(namespace=pod.namespace, name=pod.name))
                except NotFound:
                    return None
        if (current.get("metadata") or {}).get("uid") != pod.uid:
            return None
        return current

    def _unreserve_logged(self, ctx: PodContext, node: str, why: str) -> None:
        pod = ctx.pod
        if pod.bandwidth.is_zero():
            return
        try:
            self._unreserve(node, pod.uid)
        except ApiError as error:
            # The accounting controller releases it as stale after the grace period.
            log.warning("unreserve_failed", pod=pod.key, node=node, why=why, error=str(error))
        except Exception:
            log.exception("unreserve_failed", pod=pod.key, node=node, why=why)

    def _finish(self, outcome: Outcome) -> None:
        """Report an outcome; never raises, so no pod stays in flight or assumed."""
        if outcome.bound or outcome.pod_gone:
            with self._lock:
                self._in_doubt.discard(outcome.ctx.pod.uid)
        try:
            if not outcome.bound:
                self._state.forget(outcome.ctx.pod.uid)
        except Exception:
            log.exception("forget_failed", pod=outcome.ctx.pod.key)
        try:
            self._on_outcome(outcome)
        except Exception:
            log.exception("outcome_handler_failed", pod=outcome.ctx.pod.key)


def _since(started: float) -> str:
    return f"{time.monotonic() - started:.3f}"


def _logged(work: Callable[[], None]) -> None:
    try:
        work()
    except Exception:
        log.exception("background_write_failed", work=getattr(work, "__qualname__", "?"))
