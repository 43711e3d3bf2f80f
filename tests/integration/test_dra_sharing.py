"""Sharing nodes with kube-scheduler and DRA consumable capacity, on the real control plane.

kube-scheduler v1.37.2 and kube-controller-manager's resourceclaim-controller allocate claims
for pods that ask through a ResourceClaimTemplate; our scheduler and accounting controller run
with ``--dra-driver`` on the same simulated nodes. The books are audited from both sides:
what the claims consumed (``status.allocation...consumedCapacity``) plus our ledger.

The guarantee is one way: our scheduler never takes what kube-scheduler gave to a claim, and a
claim that goes frees it; kube-scheduler does not read our ledger, so a claim allocated after
our pods may oversubscribe a node, which the accounting controller then reports.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from accounting.controller import Controller
from accounting.settings import AccountingSettings
from bandwidth.budget import AXES, LinkBudget, Usage
from bandwidth.dra import holdings_of
from bandwidth.model import parse_bandwidth
from kubectl_bandwidth.cli import main as kubectl_bandwidth
from kubeio.config import load_client_configuration
from kubeio.errors import NotFound
from kubeio.labels import LabelSelector
from kubeio.resources import BANDWIDTHS, PODS, RESOURCECLAIMS, RESOURCESLICES
from kubeio.rest import KubeApi
from localcluster import ControlPlane, create_simulated_nodes, delete_simulated_nodes, dra
from scheduler.config import SchedulerConfig
from scheduler.loop import Scheduler

JSON = dict[str, Any]
SCOPE = "dra.test.vaclab.org/scope"
CAPACITY = Usage(local=LinkBudget(20000, 20000), network=LinkBudget(1000, 1000))


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class Lab:
    """Three nodes shared by kube-scheduler (DRA claims) and our daemons (annotations)."""

    kube: KubeApi
    kubeconfig: str
    namespace: str
    scope: str
    scheduler_name: str
    nodes: list[str] = field(default_factory=list)

    def pod(self, name: str, *, dra_template: str = "", up: str = "", down: str = "") -> JSON:
        body: JSON = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "schedulerName": "default-scheduler" if dra_template else self.scheduler_name,
                "nodeSelector": {SCOPE: self.scope},
                "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
            },
        }
        if dra_template:
            dra.with_claim(body, dra_template)
        else:
            body["metadata"]["annotations"] = {
                "kubernetes.io/egress-bandwidth": up,
                "kubernetes.io/ingress-bandwidth": down,
            }
        return self.kube.create(PODS.path(namespace=self.namespace), body)

    def pods(self) -> list[JSON]:
        return self.kube.list(PODS.path(namespace=self.namespace))[0]

    def bound(self, prefix: str) -> dict[str, str]:
        return {
            p["metadata"]["name"]: p["spec"]["nodeName"]
            for p in self.pods()
            if p["metadata"]["name"].startswith(prefix) and p["spec"].get("nodeName")
        }

    def claims(self) -> list[JSON]:
        return self.kube.list(RESOURCECLAIMS.path(namespace=self.namespace))[0]

    def delete_pod(self, name: str) -> None:
        # Simulated nodes have no kubelet to confirm a graceful deletion.
        self.kube.request(
            "DELETE",
            PODS.path(namespace=self.namespace, name=name),
            body={"gracePeriodSeconds": 0},
        )

    def audit(self) -> dict[str, Usage]:
        """Per node, what the claims consumed plus what our ledger holds."""
        slices = self.kube.list(
            RESOURCESLICES.path(), {"fieldSelector": f"spec.driver={dra.DRIVER}"}
        )[0]
        held = holdings_of(self.claims(), slices, dra.SHARING)
        totals = {}
        for node in self.nodes:
            ledger = parse_bandwidth(self.kube.get(BANDWIDTHS.path(name=node)))
            dra_usage = held[node].usage if node in held else Usage()
            totals[node] = ledger.reserved() + dra_usage
        return totals

    def over_capacity(self) -> list[str]:
        return [
            node
            for node, used in self.audit().items()
            if any(used.on(axis) > CAPACITY.on(axis) for axis in AXES)
        ]

    def status(self, node: str) -> JSON:
        try:
            return dict(self.kube.get(BANDWIDTHS.path(name=node)).get("status") or {})
        except NotFound:
            return {}


def _run(worker: Any) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    worker.start()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


@pytest.fixture
def lab(controlplane: ControlPlane, api_client: Any, namespace: str) -> Iterator[Lab]:
    kube = KubeApi(load_client_configuration(str(controlplane.kubeconfig_path), pool_size=64))
    scope = uuid.uuid4().hex[:8]
    lab = Lab(kube, str(controlplane.kubeconfig_path), namespace, scope, f"vaclab-dra-{scope}")
    lab.nodes = create_simulated_nodes(
        api_client, 3, name_prefix=f"dra-{scope}", labels={SCOPE: scope}
    )
    dra.publish(api_client, dict.fromkeys(lab.nodes, CAPACITY))
    kube.create(
        f"/apis/resource.k8s.io/v1/namespaces/{namespace}/resourceclaimtemplates",
        dra.claim_template("dra-bandwidth", namespace, ul_mbps=400, dl_mbps=300),
    )
    controlplane.start_controller_manager({"controllers": "resourceclaim-controller"})
    controlplane.start_kube_scheduler()
    accounting = Controller(
        kube,
        AccountingSettings(
            node_selector=LabelSelector.parse(f"{SCOPE}={scope}"),
            dra=dra.SHARING,
            resync_period_seconds=0,
        ),
        registry=CollectorRegistry(),
    )
    scheduler = Scheduler(kube, SchedulerConfig(scheduler_name=lab.scheduler_name, dra=dra.SHARING))
    running = [(accounting, *_run(accounting)), (scheduler, *_run(scheduler))]
    try:
        wait_for("Bandwidth objects", lambda: all(lab.status(n) for n in lab.nodes), 60)
        yield lab
    finally:
        for worker, stop, thread in running:
            stop.set()
            thread.join(5)
            worker.close()
        controlplane.stop_component("kube-scheduler")
        controlplane.stop_component("kube-controller-manager")
        for pod in lab.pods():
            lab.delete_pod(pod["metadata"]["name"])
        dra.unpublish(api_client, lab.nodes)
        delete_simulated_nodes(api_client, names=lab.nodes)
        for node in lab.nodes:
            with contextlib.suppress(NotFound):  # deleted with its node already
                kube.delete(BANDWIDTHS.path(name=node))
        kube.close()


def test_claims_and_our_pods_share_nodes_and_the_books_count_both(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1. kube-scheduler gives claims 400/300 Mbps each: two fit on each 1000 Mbps NIC.
    for i in range(6):
        lab.pod(f"dra-{i}", dra_template="dra-bandwidth")
    dra_nodes = wait_for(
        "6 DRA pods bound", lambda: len(lab.bound("dra-")) == 6 and lab.bound("dra-")
    )
    assert sorted(dra_nodes.values()) == sorted(lab.nodes * 2)
    wait_for(
        "DRA held in every node's status",
        lambda: all(
            (lab.status(n).get("draUsed") or {}).get("network") == {"ulMbps": 800, "dlMbps": 600}
            for n in lab.nodes
        ),
    )

    # 2. Our pods, 150 Mbps each way: one fits beside the claims on each node, not two.
    for i in range(6):
        lab.pod(f"ours-{i}", up="150M", down="150M")

    def decided() -> tuple[dict[str, str], list[str]] | None:
        pods = [p for p in lab.pods() if p["metadata"]["name"].startswith("ours-")]
        bound = {
            p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods if p["spec"].get("nodeName")
        }
        why = [
            c["message"]
            for p in pods
            if not p["spec"].get("nodeName")
            for c in p.get("status", {}).get("conditions") or []
            if c.get("type") == "PodScheduled" and c.get("status") == "False"
        ]
        return (bound, why) if len(bound) + len(why) == 6 else None

    bound, waiting = wait_for("each of our pods bound or told why it waits", decided)
    assert sorted(bound.values()) == sorted(lab.nodes), bound
    assert "insufficient network uplink bandwidth" in waiting[0]
    time.sleep(2)  # and nothing more is placed
    assert len(lab.bound("ours-")) == 3
    assert lab.over_capacity() == []
    for node in lab.nodes:
        assert lab.audit()[node].network == LinkBudget(950, 750)
        status = wait_for(
            f"{node}'s status counting both",
            lambda node=node: (s := lab.status(node))["used"]["network"]["ulMbps"] == 950 and s,
        )
        assert status["state"] == "Ready"
        # The two claims kube-scheduler allocated here (named after their pods), and the
        # DRA pods are not charged again as observed.
        assert sorted(c["name"][:5] for c in status["draClaims"]) == sorted(
            pod for pod, where in dra_nodes.items() if where == node
        )
        assert not any(r["podName"].startswith("dra-") for r in status["reservations"])

    # kubectl bandwidth status shows what the claims hold in its own column.
    capsys.readouterr()
    argv = ["status", "--kubeconfig", lab.kubeconfig, "-l", f"{SCOPE}={lab.scope}"]
    assert kubectl_bandwidth(argv) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].endswith("DRA UL/DL (Mbps)")
    assert all(line.endswith("net 800/600 local 800/600") for line in table[1:4]), table
    assert all("950/1000 (50 free)" in line for line in table[1:4]), table

    # 3. The claims of one node go: our waiting pods take the room, and no more than it.
    freed = lab.nodes[0]
    for name, node in dra_nodes.items():
        if node == freed:
            lab.delete_pod(name)
    wait_for("our 6 pods bound", lambda: len(lab.bound("ours-")) == 6)
    assert list(lab.bound("ours-").values()).count(freed) == 4
    assert lab.over_capacity() == []

    # 4. kube-scheduler does not read our ledger: claims allocated after our pods can
    #    oversubscribe the node, and the accounting controller says so.
    for i in range(6, 9):
        lab.pod(f"dra-{i}", dra_template="dra-bandwidth")
    wait_for("2 more DRA pods bound", lambda: len(lab.bound("dra-")) == 6)
    assert lab.over_capacity() == [freed]
    status = wait_for(
        "the oversubscription reported",
        lambda: (s := lab.status(freed))["state"] == "Oversubscribed" and s,
    )
    over = [c for c in status["conditions"] if c["type"] == "Oversubscribed"]
    assert over[0]["status"] == "True" and "NetworkUplink" in over[0]["reason"]
