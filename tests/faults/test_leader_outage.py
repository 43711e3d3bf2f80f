"""Two scheduler replicas with leader election through a 20-second apiserver outage, then the
leader SIGKILLed.

Before the fix both replicas' election threads ended on the first refused connection (the
official client's ``LeaseLock`` catches only ``ApiException``) with a traceback; the leader
went on scheduling without renewing, the standby could never take over, ``/healthz`` said ok,
and once the leader was killed no pod was bound again.

Now, as documented: the leader that cannot renew stops leading (and writing) after the renew
deadline and exits 1; like a kubelet, the test starts a replica that exits on its own again. The
standby keeps trying, and ``/healthz`` shows its election loop alive throughout. After the
outage one replica leads; SIGKILL it (not restarted, as if its node had died) and the other
takes over when the Lease expires: pods created then are bound within the lease duration plus
a few seconds.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest

from kubeio.config import load_client_configuration
from kubeio.errors import ApiError, NotLeading
from kubeio.leader import LeaderElector
from kubeio.resources import LEASES, Resource
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from tests.faults.conftest import PrivateLab
from tests.faults.proxy import FaultProxy
from tests.faults.support import Daemon, Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

LEASE_SECONDS = 8
ELECTION = (
    "--leader-elect",
    f"--leader-elect-lease-duration={LEASE_SECONDS}s",
    "--leader-elect-renew-deadline=5s",
    "--leader-elect-retry-period=1s",
)
OUTAGE_SECONDS = 20
CONFIGMAPS = Resource("", "v1", "configmaps", namespaced=True)


class Replicas:
    """Scheduler replicas; one that exits on its own is started again, as a kubelet would."""

    def __init__(self, lab: Lab, count: int) -> None:
        self._lab = lab
        self._args = (*ELECTION, f"--leader-elect-resource-namespace={lab.namespace}")
        self.running = [lab.scheduler(*self._args, name="replica") for _ in range(count)]
        self.exited: list[tuple[Daemon, int]] = []
        self.killed: list[Daemon] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        while not self._stop.wait(0.3):
            for daemon in list(self.running):
                code = daemon.process.poll()
                if code is not None and daemon not in self.killed:
                    self.running.remove(daemon)
                    self.exited.append((daemon, code))
                    self.running.append(self._lab.scheduler(*self._args, name="replica"))

    def kill(self, daemon: Daemon) -> None:
        self.killed.append(daemon)
        daemon.kill()
        self.running.remove(daemon)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def leader(self) -> Daemon | None:
        """The running replica the Lease names."""
        try:
            lease = self._lab.kube.get(
                LEASES.path(namespace=self._lab.namespace, name=self._lab.scheduler_name)
            )
        except ApiError:
            return None
        holder = (lease.get("spec") or {}).get("holderIdentity")
        for daemon in self.running:
            started = daemon.named("leader_election_started")
            if started and started[0]["identity"] == holder and daemon.alive():
                return daemon
        return None


def _get(daemon: Daemon, path: str) -> tuple[int, str]:
    started = wait_for(f"{daemon.name} to start", lambda: daemon.named("started"))
    port = int(started[-1]["health_port"])
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)


def test_a_standby_takes_over_after_an_outage_and_the_leader_s_death(
    private_lab: PrivateLab,
) -> None:
    cp, lab = private_lab()
    accounting = lab.accounting()
    [node] = lab.make_nodes(1, network_mbps=1000)
    wait_for("the Bandwidth", lambda: lab.bandwidth(node))
    replicas = Replicas(lab, 2)
    try:
        first = wait_for("a leader", replicas.leader, timeout=60)
        standby = next(d for d in replicas.running if d is not first)
        wait_for("the standby ready", lambda: _get(standby, "/readyz")[0] == 200)
        lab.create_pod("before", egress="100M")
        wait_for("before bound", lambda: lab.bound().get("before"))

        probes: list[tuple[int, str]] = []
        probing = threading.Event()

        def probe() -> None:
            while not probing.is_set():
                probes.append(_get(standby, "/healthz?verbose"))
                probing.wait(1.0)

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        went = time.monotonic()
        cp.restart_apiserver(down_seconds=OUTAGE_SECONDS)
        back = time.monotonic()
        probing.set()
        prober.join(5)
        leader = wait_for("a leader after the outage", replicas.leader, timeout=60)
        took_over = time.monotonic() - back
        lab.create_pod("after-outage", egress="100M")
        wait_for("after-outage bound", lambda: lab.bound().get("after-outage"), timeout=30)

        replicas.kill(leader)
        killed_at = time.monotonic()
        names = [f"after-kill-{i}" for i in range(5)]
        lab.create_pods(names, egress="100M")
        wait_for(
            "the pods created after the SIGKILL bound",
            lambda: set(names) <= set(lab.bound()),
            timeout=LEASE_SECONDS + 20,
            interval=0.25,
        )
        bound_in = time.monotonic() - killed_at
        result = lab.settled_audit()
        result.row(
            f"2 scheduler replicas, apiserver down {back - went:.0f}s, then the leader SIGKILLed"
        )
    finally:
        replicas.stop()

    print(
        f"apiserver away {back - went:.1f}s; leader after {took_over:.1f}s; replicas that "
        f"exited on their own: {[(d.name, code) for d, code in replicas.exited]}; pods after "
        f"the SIGKILL bound {bound_in:.1f}s after it (lease {LEASE_SECONDS}s)"
    )
    assert bound_in <= LEASE_SECONDS + 7, bound_in
    [(exited, code)] = [(d, c) for d, c in replicas.exited if d is first] or [(first, None)]
    assert code == 1, f"{first.name} did not exit 1 after losing the Lease:\n{first.tail()}"
    [lost] = exited.named("stopped_leading")
    assert "not renewed" in lost["reason"], lost
    assert probes and all(
        status == 200 and "[+]leader-election ok" in body for status, body in probes
    ), Counter(status for status, _ in probes)
    result.assert_clean()
    for daemon in [*replicas.running, *(d for d, _ in replicas.exited), accounting]:
        assert not daemon.tracebacks(), f"{daemon.name}:\n{daemon.tail()}"
    assert len(lab.bound()) == 1 + 1 + len(names)


def test_a_leader_cut_off_stops_writing_before_a_standby_can_lead(
    lab: Lab, controlplane: ControlPlane
) -> None:
    """In-process: the leader reaches the apiserver through the fault proxy, which cuts it
    off; its fence closes (writes refused before they are sent) before the standby, which
    sees the apiserver directly, can take the Lease."""

    def elector(api: KubeApi, identity: str) -> LeaderElector:
        return LeaderElector(
            api,
            lease_name=lab.scope,
            lease_namespace=lab.namespace,
            identity=identity,
            lease_duration=4.0,
            renew_deadline=3.0,
            retry_period=0.5,
        )

    with FaultProxy(controlplane.credentials) as proxy:
        cut_off = KubeApi(load_client_configuration(str(proxy.kubeconfig(lab.log_dir / "p.cfg"))))
        direct = KubeApi(load_client_configuration(str(lab.kubeconfig)))
        leader = elector(cut_off, "leader")
        standby = elector(direct, "standby")
        cut_off.set_write_fence(leader.write_allowance)
        leader.start()
        try:
            wait_for("the leader leading", leader.leading.is_set)
            standby.start()
            assert cut_off.create(
                CONFIGMAPS.path(namespace=lab.namespace), _configmap("while-leading")
            )
            proxy.partition()
            partitioned = time.monotonic()
            wait_for("the fence closed", lambda: leader.write_allowance() <= 0, timeout=10)
            fenced = time.monotonic()
            sent = len(proxy.records())
            with pytest.raises(NotLeading):
                cut_off.create(CONFIGMAPS.path(namespace=lab.namespace), _configmap("late"))
            assert len(proxy.records()) == sent  # refused before it was sent
            wait_for("the standby leading", standby.leading.is_set, timeout=15)
            standby_leads = time.monotonic()
            wait_for("the leader giving up", leader.lost.is_set, timeout=10)
        finally:
            leader.stop()
            standby.stop()
            cut_off.close()
            direct.close()
    print(
        f"fence closed {fenced - partitioned:.1f}s after the partition, the standby led "
        f"{standby_leads - partitioned:.1f}s after it (renew deadline 3 s, lease 4 s)"
    )
    assert fenced < standby_leads
    assert fenced - partitioned <= 3.0 + 0.5


def _configmap(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
