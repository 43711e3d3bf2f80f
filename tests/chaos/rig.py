"""The cluster a soak runs on: a private control plane, simulated nodes, and the daemons as a
Deployment would run them.

- a :class:`~localcluster.ControlPlane` of its own (the soak SIGKILLs its apiserver);
- ``nodes`` simulated nodes (``chaos-0000``, ...) whose annotations give the accounting
  controller their capacity (``workload.NETWORK_MBPS``, ``workload.LOCAL_MBPS``);
- three :class:`Slot` replicas: ``scheduler-a`` and ``scheduler-b`` (``--leader-elect`` on one
  Lease) and ``accounting`` (``--leader-elect``, scoped to the soak's nodes), each behind its own
  :class:`~tests.faults.proxy.FaultProxy`, so a network fault can hit one daemon or all;
- a supervisor thread playing kubelet and Deployment: a process that exits is started again
  after ``restart_delay`` (``restartPolicy: Always``, without the growing back-off), and one whose
  ``/healthz`` fails three probes in a row (one every ``probe_period``) is SIGKILLed and started
  again, as the chart's liveness probe would have it (20 s period there; shorter here, so that a
  60-second soak can see it).

Every process incarnation logs to ``<log_dir>/<slot>[-n].log``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from kubeio.config import load_client_configuration
from kubeio.errors import ApiError, NotFound
from kubeio.resources import BANDWIDTHS, LEASES, STATEFULSETS
from kubeio.rest import KubeApi
from localcluster import ControlPlane, create_simulated_nodes, install_crds
from localcluster.process import free_port
from tests.chaos.workload import LOCAL_MBPS, NETWORK_MBPS, POD_SETS, SET_LABEL
from tests.faults.proxy import FaultProxy
from tests.faults.support import SCOPE_LABEL, Daemon, Lab, wait_for

SCOPE = "chaos"
SCHEDULER_LEASE = "chaos-scheduler"
ACCOUNTING_LEASE = "chaos-accounting"

CAPACITY_ANNOTATIONS = {
    "bandwidth.vaclab.org/network-ul-mbps": str(NETWORK_MBPS),
    "bandwidth.vaclab.org/network-dl-mbps": str(NETWORK_MBPS),
    "bandwidth.vaclab.org/local-ul-mbps": str(LOCAL_MBPS),
    "bandwidth.vaclab.org/local-dl-mbps": str(LOCAL_MBPS),
}


@dataclass(frozen=True, slots=True)
class RigSettings:
    nodes: int = 4
    lease_duration: float = 8.0
    renew_deadline: float = 6.0
    retry_period: float = 1.0
    unbound_grace: float = 10.0
    restart_delay: float = 1.0
    probe_period: float = 2.0
    probe_initial_delay: float = 10.0
    proxy_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class Exit:
    """A daemon process that ended without the chaos killing it."""

    at: float
    slot: str
    code: int | None
    cause: str
    """``exited`` or ``liveness`` (killed after failed probes)."""
    last_lines: str


def _ignore_request_error(request: object, client_address: object) -> None:
    return None


_IDENTITIES: dict[str, str] = {}


def identity_of(daemon: Daemon) -> str:
    """The Lease identity a process logged (the first log event with an ``identity``)."""
    key = str(daemon.log)
    if key not in _IDENTITIES:
        for event in daemon.events():
            if event.get("identity"):
                _IDENTITIES[key] = str(event["identity"])
                break
        else:
            return ""
    return _IDENTITIES[key]


@dataclass
class Slot:
    """One replica of a Deployment: successive processes behind one fault proxy."""

    name: str
    module: str
    args: Sequence[str]
    proxy: FaultProxy
    kubeconfig: Path
    lab: Lab
    daemon: Daemon | None = None
    health_port: int = 0
    started_at: float = 0.0
    held: bool = False
    """The chaos killed it and starts it again itself; the supervisor keeps off."""
    probe_failures: int = 0
    incarnations: int = 0
    history: list[tuple[float, Daemon]] = field(default_factory=list)
    """Every process of this replica, with its start time."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Daemon:
        self.health_port = free_port()
        extra = [*self.args, f"--health-probe-bind-address=127.0.0.1:{self.health_port}"]
        if self.module == "scheduler":
            self.daemon = self.lab.scheduler(*extra, kubeconfig=self.kubeconfig, name=self.name)
        else:
            self.daemon = self.lab.accounting(*extra, kubeconfig=self.kubeconfig, name=self.name)
        self.started_at = time.monotonic()
        self.probe_failures = 0
        self.incarnations += 1
        self.history.append((self.started_at, self.daemon))
        return self.daemon

    def kill(self) -> None:
        if self.daemon is not None:
            self.daemon.kill()

    def alive(self) -> bool:
        return self.daemon is not None and self.daemon.alive()

    def identity(self) -> str:
        """The Lease holder identity of the current process ("" until it has logged it)."""
        return identity_of(self.daemon) if self.daemon is not None else ""

    def healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False


class Rig:
    def __init__(self, settings: RigSettings, log_dir: Path, seed: int) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.seed = seed
        self.cp = ControlPlane()
        self.slots: dict[str, Slot] = {}
        self.exits: list[Exit] = []
        self.restarts: dict[str, int] = {}
        self._stop = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._kube: KubeApi | None = None
        self._lab: Lab | None = None
        # The kernel SIGKILLs a component when the *thread* that started it ends
        # (PR_SET_PDEATHSIG): apiserver restarts run on this one long-lived thread.
        self._keeper = ThreadPoolExecutor(1, thread_name_prefix="apiserver-keeper")

    # ------------------------------------------------------------------------- set-up
    @property
    def kube(self) -> KubeApi:
        assert self._kube is not None, "the rig is not started"
        return self._kube

    @property
    def lab(self) -> Lab:
        assert self._lab is not None, "the rig is not started"
        return self._lab

    @property
    def namespace(self) -> str:
        return self.lab.namespace

    @property
    def scheduler_name(self) -> str:
        return self.lab.scheduler_name

    def node_names(self) -> list[str]:
        return [f"{SCOPE}-{index:04d}" for index in range(self.settings.nodes)]

    def start(self) -> Rig:
        self.cp.start()
        client = self.cp.api_client()
        install_crds(client)
        self._kube = KubeApi(
            load_client_configuration(str(self.cp.kubeconfig_path), pool_size=32),
            user_agent="chaos-harness",
            timeout_seconds=10.0,
        )
        self._lab = Lab(
            self.kube,
            client,
            self.cp.kubeconfig_path,
            self.log_dir,
            namespace=SCOPE,
            scope=SCOPE,
            scheduler_name="vaclab-chaos",
        )
        self.lab.create_namespace()
        self._create_statefulsets()
        for index in range(self.settings.nodes):
            self.add_node(index)
        lease = [
            "--leader-elect",
            f"--leader-elect-lease-duration={self.settings.lease_duration}s",
            f"--leader-elect-renew-deadline={self.settings.renew_deadline}s",
            f"--leader-elect-retry-period={self.settings.retry_period}s",
            f"--leader-elect-resource-namespace={self.namespace}",
        ]
        self._slot(
            "accounting",
            "accounting",
            [
                *lease,
                f"--leader-elect-resource-name={ACCOUNTING_LEASE}",
                f"--unbound-reservation-grace={self.settings.unbound_grace}s",
            ],
        )
        wait_for(
            "a Bandwidth per node",
            lambda: len(self.lab.bandwidths()) == self.settings.nodes,
            timeout=60,
        )
        for name in ("scheduler-a", "scheduler-b"):
            self._slot(
                name, "scheduler", [*lease, f"--leader-elect-resource-name={SCHEDULER_LEASE}"]
            )
        for component in ("scheduler", "accounting"):
            self._wait_leader(component)
        self._supervisor.start()
        return self

    def _slot(self, name: str, module: str, args: list[str]) -> Slot:
        proxy = FaultProxy(
            self.cp.credentials,
            max_seconds=self.settings.proxy_seconds,
            max_requests=10_000_000,
            seed=self.seed * 31 + len(self.slots),
        ).start()
        # A client that drops its connection (a killed daemon) is normal here; the proxy's
        # server would print a stack trace for each.
        setattr(proxy._server, "handle_error", _ignore_request_error)  # noqa: B010
        kubeconfig = proxy.kubeconfig(self.log_dir / f"{name}.kubeconfig")
        slot = Slot(name, module, args, proxy, kubeconfig, self.lab)
        self.slots[name] = slot
        slot.start()
        return slot

    def _create_statefulsets(self) -> None:
        """StatefulSet objects the pods name as their owner (no controller runs them): the
        scheduler's sibling logic and both daemons' workload caches see real owners."""
        for pod_set in POD_SETS:
            labels = {SET_LABEL: pod_set.name}
            self.kube.create(
                STATEFULSETS.path(namespace=self.namespace),
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "metadata": {"name": pod_set.name, "namespace": self.namespace},
                    "spec": {
                        "replicas": pod_set.replicas(self.settings.nodes),
                        "serviceName": pod_set.name,
                        "selector": {"matchLabels": labels},
                        "template": {
                            "metadata": {"labels": labels, "annotations": pod_set.annotations()},
                            "spec": {
                                "schedulerName": self.scheduler_name,
                                "containers": [
                                    {"name": "app", "image": "registry.k8s.io/pause:3.10"}
                                ],
                            },
                        },
                    },
                },
            )

    def statefulset_uid(self, name: str) -> str:
        return str(
            self.kube.get(STATEFULSETS.path(namespace=self.namespace, name=name))["metadata"]["uid"]
        )

    def add_node(self, index: int) -> str:
        """Create node ``index`` (``chaos-0002``); one that exists already is left alone."""
        name = self.node_names()[index]
        try:
            create_simulated_nodes(
                self.lab.api_client,
                1,
                name_prefix=SCOPE,
                start_index=index,
                labels={SCOPE_LABEL: SCOPE},
                annotations=CAPACITY_ANNOTATIONS,
            )
        except ApiException as error:
            if error.status != 409:
                raise
        if name not in self.lab.nodes:
            self.lab.nodes.append(name)
        return name

    # ---------------------------------------------------------------------- leadership
    def _wait_leader(self, component: str) -> None:
        def leading() -> Slot | None:
            return self.leader(component)

        leader = wait_for(f"a {component} leader", leading, timeout=60)
        if leader is not None and leader.daemon is not None:
            leader.daemon.wait_synced(timeout=60)

    def lease_of(self, slot: Slot) -> str:
        return SCHEDULER_LEASE if slot.module == "scheduler" else ACCOUNTING_LEASE

    def leader(self, component: str) -> Slot | None:
        """The slot whose process holds the component's Lease, if it can be told."""
        lease = SCHEDULER_LEASE if component == "scheduler" else ACCOUNTING_LEASE
        try:
            holder = self.kube.get(LEASES.path(namespace=self.namespace, name=lease))
        except ApiError:
            return None
        identity = (holder.get("spec") or {}).get("holderIdentity") or ""
        for slot in self.slots.values():
            if slot.module == component and identity and slot.identity() == identity:
                return slot
        return None

    def lease_report(self) -> list[str]:
        """Each Lease: its holder's process and how long ago it was renewed."""
        lines = []
        for lease in (SCHEDULER_LEASE, ACCOUNTING_LEASE):
            try:
                spec = self.kube.get(LEASES.path(namespace=self.namespace, name=lease))["spec"]
            except (ApiError, KeyError):
                lines.append(f"{lease}: unreadable")
                continue
            identity = spec.get("holderIdentity") or ""
            holder = next(
                (d.name for d in self.lab.daemons if identity and identity_of(d) == identity),
                "?",
            )
            alive = any(d.name == holder and d.alive() for d in self.lab.daemons)
            renewed = spec.get("renewTime") or ""
            try:
                stamp = datetime.fromisoformat(str(renewed).replace("Z", "+00:00"))
                age = f"renewed {(datetime.now(UTC) - stamp).total_seconds():.0f}s ago"
            except ValueError:
                age = "never renewed"
            lines.append(
                f"{lease}: {identity or 'nobody'} ({holder}, {'alive' if alive else 'gone'}), {age}"
            )
        return lines

    def scheduler_queues(self) -> str:
        """The leading scheduler's attempts and queues, from its /metrics ("" if unknown)."""
        leader = self.leader("scheduler")
        if leader is None or leader.daemon is None:
            return ""
        try:
            text = leader.daemon.metrics()
        except (OSError, AssertionError):
            return ""
        wanted = {
            "vaclab_scheduler_schedule_attempts_total": ("attempts", "result"),
            "vaclab_scheduler_pending_pods": ("queues", "queue"),
        }
        found: dict[str, list[str]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in wanted:
                    what, label = wanted[sample.name]
                    found.setdefault(what, []).append(
                        f"{sample.labels.get(label)}={sample.value:g}"
                    )
        if not found:
            return ""
        return f"{leader.daemon.name} " + "; ".join(
            f"{what} {' '.join(values)}" for what, values in found.items()
        )

    # ---------------------------------------------------------------------- supervisor
    def _supervise(self) -> None:
        last_probe = 0.0
        while not self._stop.wait(0.5):
            now = time.monotonic()
            probe = now - last_probe >= self.settings.probe_period
            if probe:
                last_probe = now
            for slot in self.slots.values():
                if not slot.lock.acquire(blocking=False):
                    continue
                try:
                    if not slot.held:
                        self._look_after(slot, now, probe)
                finally:
                    slot.lock.release()

    def _look_after(self, slot: Slot, now: float, probe: bool) -> None:
        daemon = slot.daemon
        if daemon is None:
            return
        if not daemon.alive():
            self.exits.append(
                Exit(now, daemon.name, daemon.process.returncode, "exited", daemon.tail(5))
            )
            time.sleep(self.settings.restart_delay)
            self._restart(slot)
            return
        if not probe or now - slot.started_at < self.settings.probe_initial_delay:
            return
        if slot.healthy():
            slot.probe_failures = 0
            return
        slot.probe_failures += 1
        if slot.probe_failures >= 3:
            slot.kill()
            self.exits.append(Exit(now, daemon.name, None, "liveness", daemon.tail(5)))
            self._restart(slot)

    def _restart(self, slot: Slot) -> None:
        self.restarts[slot.name] = self.restarts.get(slot.name, 0) + 1
        slot.start()

    # --------------------------------------------------------------------------- quiet
    def heal(self) -> None:
        """Heal every proxy, start every dead daemon, bring back every missing node."""
        for slot in self.slots.values():
            slot.proxy.inject((500,), 0.0, 0.0)
            slot.proxy.heal()
            with slot.lock:
                if not slot.alive():
                    self._restart(slot)
        try:
            present = {n["metadata"]["name"] for n in self.kube.list("/api/v1/nodes")[0]}
        except ApiError:
            return
        for index, name in enumerate(self.node_names()):
            if name not in present:
                with contextlib.suppress(Exception):
                    self.add_node(index)

    def tracebacks(self) -> dict[str, int]:
        """Log lines with a stack trace, per process incarnation."""
        found = {}
        for daemon in self.lab.daemons:
            count = len(daemon.tracebacks())
            if count:
                found[daemon.name] = count
        return found

    def thread_deaths(self) -> list[str]:
        """``Exception in thread ...`` in any process's log, with the exception it died of."""
        found = []
        for daemon in self.lab.daemons:
            lines = daemon.text().splitlines()
            for number, line in enumerate(lines):
                if line.startswith("Exception in thread"):
                    cause = next(
                        (
                            later
                            for later in lines[number + 1 :]
                            if later
                            and not later.startswith((" ", "Traceback", "{", "WARNING"))
                            and "direct cause" not in later
                            and "During handling" not in later
                        ),
                        "?",
                    )
                    cause = cause.split("WARNING:")[0]  # another thread's line cut in
                    found.append(f"{daemon.name}: {line.rstrip(':')}: {cause[:160]}")
        return found

    def bandwidth(self, node: str) -> dict[str, object] | None:
        try:
            return self.kube.get(BANDWIDTHS.path(name=node))
        except NotFound:
            return None

    # ------------------------------------------------------------------------ teardown
    def kill_apiserver(self) -> None:
        pid = self.cp.pids().get("kube-apiserver")
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    def restart_apiserver(self) -> float:
        """Start kube-apiserver again (same port, same etcd); seconds until it is ready."""
        return self._keeper.submit(self.cp.restart_apiserver).result()

    def stop(self) -> None:
        self._stop.set()
        if self._supervisor.is_alive():
            self._supervisor.join(10)
        if self._lab is not None:
            for daemon in self.lab.daemons:
                daemon.kill()
        for slot in self.slots.values():
            slot.proxy.stop()
        if self._kube is not None:
            self._kube.close()
        if self._lab is not None:
            with contextlib.suppress(Exception):
                self.lab.api_client.close()
        self.cp.stop()
        self._keeper.shutdown()
