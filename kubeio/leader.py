"""Leader election on a ``coordination.k8s.io`` Lease, through the official client's
``kubernetes.leaderelection``.

Every replica runs its watch caches (a synced standby is ready to take over at once); only the
replica holding the Lease schedules or writes. A leader that cannot renew within the renew
deadline stops leading and the daemon exits, as kube components do, so it never writes
alongside a new leader for longer than its in-flight requests.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import structlog
from kubernetes import client
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

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


class LeaderElector:
    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        lease_name: str,
        lease_namespace: str,
        identity: str,
        lease_duration: float,
        renew_deadline: float,
        retry_period: float,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], None],
    ) -> None:
        self.identity = identity
        self.leading = threading.Event()
        self._started = on_started_leading
        self._stopped = on_stopped_leading
        lock = LeaseLock(lease_name, lease_namespace, identity)
        lock.api_instance = client.CoordinationV1Api(api_client)
        self._config = electionconfig.Config(
            lock,
            math.ceil(lease_duration),  # the client stores it as whole seconds
            renew_deadline,
            retry_period,
            self._on_started,
            self._on_stopped,
        )
        self._lease = f"{lease_namespace}/{lease_name}"
        self._thread = threading.Thread(
            target=leaderelection.LeaderElection(self._config).run,
            name="leader-election",
            daemon=True,
        )

    def start(self) -> None:
        log.info("leader_election_started", lease=self._lease, identity=self.identity)
        self._thread.start()

    def _on_started(self) -> None:
        log.info("started_leading", lease=self._lease, identity=self.identity)
        self.leading.set()
        self._started()

    def _on_stopped(self) -> None:
        log.error("stopped_leading", lease=self._lease, identity=self.identity)
        self.leading.clear()
        self._stopped()
