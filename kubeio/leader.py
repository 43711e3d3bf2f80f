"""Leader election on a ``coordination.k8s.io`` Lease, and the fence on a leader's writes.

Every replica runs its watch caches (a synced standby is ready to take over at once); only the
replica holding the Lease schedules or writes. The algorithm is client-go's:

- A candidate reads the Lease every ``retry_period``. It notes, on its own monotonic clock,
  when it last saw the record change; a Lease whose holder has not renewed for
  ``lease_duration`` of *that* clock is expired (no two clocks are ever compared), and the
  candidate takes it with an update carrying the resourceVersion it read, so of two
  candidates one wins and the other gets 409.
- The leader renews every ``retry_period``. A renewal counts from the moment its request was
  sent (``confirmed_at``): the Lease cannot expire for anyone before ``confirmed_at +
  lease_duration``, because nobody can have seen the renewal before it was sent.
- A leader that has not renewed for ``renew_deadline`` stops leading; the daemon then exits
  (status 1) and is restarted, as kube components do.

The fence (``write_allowance``): a write may start only while the leadership is confirmed
(``now < confirmed_at + renew_deadline``), and its timeout is cut to what is left before
``confirmed_at + lease_duration``. So a leader that cannot renew stops writing before its
Lease can expire, and a write already sent is abandoned by then; ``lease_duration -
renew_deadline`` (5 s by default) is the margin for a write the apiserver has received but not
yet committed.

Why not the official client's ``kubernetes.leaderelection``: its ``LeaseLock`` catches only
``ApiException``, so a refused connection (an apiserver restart) ended the election thread,
printing a traceback; the leader went on writing without renewing, the standby could never
take over, and ``/healthz`` said ok. It also has no way to fence writes. This module speaks
raw JSON through ``KubeApi`` like everything else, handles every failure as a failed attempt
(one log line per state change), and reports its progress to ``/healthz``.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from kubeio.errors import ApiError, Conflict, NotFound
from kubeio.liveness import Heartbeat
from kubeio.resources import LEASES
from kubeio.rest import JSON, KubeApi

log = structlog.get_logger("kubeio.leader")

_SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def default_lease_namespace() -> str:
    """``$POD_NAMESPACE``, else the service account's namespace, else ``default``."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return _SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class _Record:
    """What a Lease says, as far as expiry goes."""

    holder: str
    renewed: str
    duration: int
    transitions: int
    acquired: str

    @classmethod
    def of(cls, lease: JSON) -> _Record:
        spec = lease.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            renewed=str(spec.get("renewTime") or ""),
            duration=int(spec.get("leaseDurationSeconds") or 0),
            transitions=int(spec.get("leaseTransitions") or 0),
            acquired=str(spec.get("acquireTime") or ""),
        )


class LeaderElector:
    def __init__(
        self,
        api: KubeApi,
        *,
        lease_name: str,
        lease_namespace: str,
        identity: str,
        lease_duration: float,
        renew_deadline: float,
        retry_period: float,
        on_lost: Callable[[], None] = lambda: None,
    ) -> None:
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError(
                "leader election needs retry period < renew deadline < lease duration, got "
                f"{retry_period}s, {renew_deadline}s, {lease_duration}s"
            )
        self.identity = identity
        self.leading = threading.Event()
        """Set while this replica holds the Lease."""
        self.lost = threading.Event()
        """Set once this replica led and could not renew (or the election loop failed): the
        daemon must exit."""
        self._api = api
        self._path = LEASES.path(namespace=lease_namespace, name=lease_name)
        self._collection = LEASES.path(namespace=lease_namespace)
        self._name = lease_name
        self._lease = f"{lease_namespace}/{lease_name}"
        self._duration = lease_duration
        self._renew_deadline = renew_deadline
        self._retry = retry_period
        self._lock = threading.Lock()
        self._confirmed_at: float | None = None
        self._observed: _Record | None = None
        self._observed_at = 0.0
        self._version = ""
        self._failing = ""
        self._on_lost = on_lost
        self._stopping = threading.Event()
        # An attempt takes two requests of at most renew_deadline each, then a retry period.
        stall_after = max(lease_duration, 2 * renew_deadline + 2 * retry_period)
        self.heartbeat = Heartbeat("leader-election", stall_after=stall_after)
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)

    # ------------------------------------------------------------------ the daemon's side
    def start(self) -> None:
        log.info("leader_election_started", lease=self._lease, identity=self.identity)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop; a leader hands the Lease back so that a standby takes over at once."""
        self.heartbeat.retire()
        self._stopping.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout)

    def write_allowance(self) -> float:
        """Seconds a write starting now may take: 0 when it must not start (not leading, or
        leadership not confirmed for ``renew_deadline``)."""
        with self._lock:
            confirmed = self._confirmed_at
        if confirmed is None or not self.leading.is_set():
            return 0.0
        now = time.monotonic()
        if now >= confirmed + self._renew_deadline:
            return 0.0
        return confirmed + self._duration - now

    # ------------------------------------------------------------------------ the loop
    def _run(self) -> None:
        with self.heartbeat.running():
            try:
                self._acquire()
                if self.leading.is_set():
                    self._renew()
            except BaseException:  # a bug: the daemon exits, /healthz says why, with the stack
                log.exception("leader_election_crashed", lease=self._lease)
                self.leading.clear()
                self.lost.set()
                self._on_lost()
                raise
            finally:
                if self.leading.is_set() and self._stopping.is_set():
                    self._release()

    def _acquire(self) -> None:
        while not self._stopping.is_set():
            self.heartbeat.beat("acquiring")
            started = time.monotonic()
            if self._try_acquire_or_renew(started):
                self._confirm(started)
                self.leading.set()
                log.info("started_leading", lease=self._lease, identity=self.identity)
                return
            self._stopping.wait(self._retry * random.uniform(1.0, 1.2))

    def _renew(self) -> None:
        while not self._stopping.wait(self._retry):
            self.heartbeat.beat("renewing")
            started = time.monotonic()
            if self._try_acquire_or_renew(started):
                self._confirm(started)
                continue
            with self._lock:
                confirmed = self._confirmed_at or 0.0
            if time.monotonic() - confirmed >= self._renew_deadline:
                self._lose(f"not renewed for {self._renew_deadline:g}s")
                return

    def _confirm(self, started: float) -> None:
        with self._lock:
            self._confirmed_at = started

    def _lose(self, why: str) -> None:
        if self.leading.is_set():
            self.leading.clear()
            self.lost.set()
            log.error("stopped_leading", lease=self._lease, identity=self.identity, reason=why)
            self._on_lost()

    # --------------------------------------------------------------------- one attempt
    def _try_acquire_or_renew(self, started: float) -> bool:
        """One read and, if the Lease is ours or free, one write; False on any failure."""
        now = datetime.now(UTC)
        try:
            lease = self._api.request("GET", self._path, timeout=self._renew_deadline)
        except NotFound:
            return self._write(self._create_body(now), create=True)
        except Exception as error:  # ApiError, or an answer we cannot read: a failed attempt
            return self._failed("read", error)
        try:
            record = _Record.of(lease)
            version = str((lease.get("metadata") or {}).get("resourceVersion", ""))
        except Exception as error:  # not a Lease
            return self._failed("read", error)
        if record != self._observed:
            self._observed, self._observed_at = record, started
        self._version = version
        mine = record.holder == self.identity
        expired = started >= self._observed_at + max(record.duration, 1)
        if record.holder and not mine and not expired:
            self._recovered()
            return False
        transitions = record.transitions if mine else record.transitions + 1
        acquired = record.acquired if mine and record.acquired else _micro_time(now)
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self._name, "resourceVersion": version},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": max(1, round(self._duration)),
                "acquireTime": acquired,
                "renewTime": _micro_time(now),
                "leaseTransitions": transitions,
            },
        }
        return self._write(body, create=False)

    def _create_body(self, now: datetime) -> JSON:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self._name},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": max(1, round(self._duration)),
                "acquireTime": _micro_time(now),
                "renewTime": _micro_time(now),
                "leaseTransitions": 0,
            },
        }

    def _write(self, body: JSON, *, create: bool) -> bool:
        try:
            method, path = ("POST", self._collection) if create else ("PUT", self._path)
            written = self._api.request(
                method, path, body=body, fenced=False, timeout=self._renew_deadline
            )
        except Conflict:  # another candidate wrote first
            self._recovered()
            return False
        except Exception as error:  # ApiError, or an answer we cannot read
            return self._failed("write", error)
        try:
            record = _Record.of(written)
            version = str((written.get("metadata") or {}).get("resourceVersion", ""))
        except Exception as error:  # written, but the answer is not a Lease: read it next time
            return self._failed("write", error)
        self._observed, self._observed_at = record, time.monotonic()
        self._version = version
        self._recovered()
        return True

    def _release(self) -> None:
        """Hand the Lease back (holder empty, 1 s duration), as client-go's ReleaseOnCancel."""
        observed = self._observed
        if observed is None or observed.holder != self.identity:
            return
        now = _micro_time(datetime.now(UTC))
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self._name, "resourceVersion": self._version},
            "spec": {
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": observed.transitions,
            },
        }
        self.leading.clear()
        try:
            self._api.request("PUT", self._path, body=body, fenced=False, timeout=self._retry)
            log.info("lease_released", lease=self._lease, identity=self.identity)
        except Exception as error:  # the Lease then expires by itself
            log.warning("lease_not_released", lease=self._lease, error=str(error))

    def _failed(self, what: str, error: Exception) -> bool:
        text = f"{type(error).__name__}: {error}" if not isinstance(error, ApiError) else str(error)
        if self._failing != text:  # one line per kind of failure, not one per retry period
            self._failing = text
            log.warning(
                "lease_unreachable",
                lease=self._lease,
                identity=self.identity,
                attempt=what,
                leading=self.leading.is_set(),
                error=text,
            )
        return False

    def _recovered(self) -> None:
        if self._failing:
            self._failing = ""
            log.info("lease_reachable", lease=self._lease, identity=self.identity)
