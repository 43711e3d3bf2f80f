"""Preemption on the real control plane: our scheduler and accounting controller running, the
test standing in for the kubelet that simulated nodes lack (it starts pods and finishes their
graceful deletion), and the books audited at every instant (``preemption_support``)."""

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
from kubeio.config import load_client_configuration
from kubeio.errors import NotFound
from kubeio.labels import LabelSelector
from kubeio.resources import BANDWIDTHS, EVENTS, PODDISRUPTIONBUDGETS, PODS
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from scheduler.loop import Scheduler
from tests.integration.scheduler.conftest import events_for, pods_in, wait_until
from tests.integration.scheduler.preemption_support import (
    AuditReport,
    BooksAudit,
    Kubelet,
    delete_priority_classes,
    make_priority_classes,
)

JSON = dict[str, Any]
SCOPE_LABEL = "preemption.test.vaclab.org/scope"
HOSTNAME = "kubernetes.io/hostname"
PRIORITIES = {"low": 10, "mid": 50, "high": 1000, "top": 2000, "never-high": 1000}


@dataclass
class Lab:
    kube: KubeApi
    namespace: str
    scheduler_name: str
    classes: dict[str, str]
    make_nodes: Callable[..., list[str]]
    scope: str
    kubelet: Kubelet
    nodes: list[str] = field(default_factory=list)
    scheduler: Scheduler | None = None

    def add_nodes(self, count: int) -> list[str]:
        """Nodes with a Bandwidth object each (the accounting controller's: 1000 Mbps NIC)."""
        names = self.make_nodes(count, labels={SCOPE_LABEL: self.scope})
        self.nodes.extend(names)
        for node in names:
            wait_until(lambda node=node: _exists(self.kube, node), what=f"Bandwidth of {node}")
        return names

    def pod(
        self,
        name: str,
        *,
        priority: str = "low",
        up: int = 0,
        on: str | None = None,
        bound_to: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        extra_spec: JSON | None = None,
    ) -> JSON:
        """A pod of ours (``on`` pins it to a node), or one bound at creation as by another
        scheduler (``bound_to``)."""
        notes = dict(annotations or {})
        if up:
            notes["kubernetes.io/egress-bandwidth"] = f"{up}M"
        spec: JSON = {
            "priorityClassName": self.classes[priority],
            "schedulerName": self.scheduler_name if bound_to is None else "someone-else",
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
            "nodeSelector": {SCOPE_LABEL: self.scope},
            **(extra_spec or {}),
        }
        if on is not None:
            spec["nodeSelector"] = {HOSTNAME: on}
        if bound_to is not None:
            spec["nodeName"] = bound_to
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}, "annotations": notes},
            "spec": spec,
        }
        return self.kube.create(PODS.path(namespace=self.namespace), body)

    def get(self, name: str) -> JSON | None:
        with contextlib.suppress(NotFound):
            return self.kube.get(PODS.path(namespace=self.namespace, name=name))
        return None

    def wait_bound(self, name: str, timeout: float = 60) -> str:
        return str(
            wait_until(
                lambda: (p := self.get(name)) is not None and p["spec"].get("nodeName"),
                timeout=timeout,
                what=f"{name} bound",
            )
        )

    def place(self, name: str, node: str, *, started_minutes_ago: float, **kwargs: Any) -> None:
        """A pod of ours, bound by our scheduler to ``node`` and started by the kubelet."""
        self.pod(name, on=node, **kwargs)
        assert self.wait_bound(name) == node
        self.kubelet.start(name, started_minutes_ago)

    def preempted(self) -> set[str]:
        """Pods that carry the DisruptionTarget condition of a preemption."""
        return {
            p["metadata"]["name"]
            for p in pods_in(self.kube, self.namespace)
            if any(
                c.get("type") == "DisruptionTarget" and c.get("reason") == "PreemptionByScheduler"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        }

    def preempted_ever(self) -> set[str]:
        """Pods a Preempted event was recorded for, gone or not."""
        items, _ = self.kube.list(EVENTS.path(namespace=self.namespace))
        return {e["involvedObject"]["name"] for e in items if e["reason"] == "Preempted"}

    def nominated(self, name: str) -> str:
        pod = self.get(name) or {}
        return str((pod.get("status") or {}).get("nominatedNodeName") or "")


def sample(metric: Any, name: str, labels: dict[str, str] | None = None) -> float:
    """A sample of one of the scheduler's metrics (0 when absent)."""
    for family in metric.collect():
        for found in family.samples:
            if found.name == name and found.labels == (labels or {}):
                return float(found.value)
    return 0.0


def _exists(kube: KubeApi, node: str) -> bool:
    with contextlib.suppress(NotFound):
        kube.get(BANDWIDTHS.path(name=node))
        return True
    return False


@pytest.fixture
def lab(
    request: pytest.FixtureRequest,
    kube: KubeApi,
    namespace: str,
    controlplane: ControlPlane,
    simulated_nodes: Callable[..., list[str]],
    run_scheduler: Callable[..., Scheduler],
    scheduler_name: str,
) -> Iterator[Lab]:
    scope = f"pre-{uuid.uuid4().hex[:6]}"
    classes = make_priority_classes(kube, scope, PRIORITIES)
    accounting_api = KubeApi(load_client_configuration(str(controlplane.kubeconfig_path)))
    settings = AccountingSettings(
        node_selector=LabelSelector.parse(f"{SCOPE_LABEL}={scope}"), resync_period_seconds=5
    )
    accounting = Controller(accounting_api, settings, registry=CollectorRegistry())
    accounting.start()
    stop = threading.Event()
    thread = threading.Thread(target=accounting.run, args=(stop,), daemon=True)
    thread.start()
    made = Lab(
        kube, namespace, scheduler_name, classes, simulated_nodes, scope, Kubelet(kube, namespace)
    )
    overrides = getattr(request, "param", {})  # scheduler settings, by indirect parametrize
    made.scheduler = run_scheduler(
        initial_backoff_seconds=0.2, max_backoff_seconds=2.0, **overrides
    )
    try:
        yield made
    finally:
        stop.set()
        thread.join(10)
        accounting.close()
        accounting_api.close()
        for node in made.nodes:
            with contextlib.suppress(NotFound):
                kube.delete(BANDWIDTHS.path(name=node))
        delete_priority_classes(kube, classes.values())


def _audit(lab: Lab) -> BooksAudit:
    audit = BooksAudit(lab.kube, lab.namespace, lab.nodes)
    audit.start()
    return audit


def _assert_never_oversubscribed(audit: BooksAudit, report: AuditReport) -> None:
    assert not audit.errors, audit.errors
    assert report.states > 0
    assert not report.overcommits, report.overcommits[:3]


def _failed_scheduling(lab: Lab, name: str) -> list[str]:
    return [
        e["message"]
        for e in events_for(lab.kube, lab.namespace, name)
        if e["reason"] == "FailedScheduling"
    ]


def test_a_full_node_makes_room_for_a_high_priority_pod(lab: Lab) -> None:
    n1, n2 = lab.add_nodes(2)
    audit = _audit(lab)
    lab.place("low-small", n1, up=300, started_minutes_ago=60)
    lab.place("low-big", n1, up=600, started_minutes_ago=5)
    lab.place("mid", n2, priority="mid", up=900, started_minutes_ago=60)

    urgent = lab.pod("urgent", priority="high", up=700)
    # kube's choice: on n1 "low-small" (running longer) is put back first and fits beside
    # 700 Mbps, "low-big" does not; n1's highest victim (10) beats n2's (50).
    wait_until(lambda: lab.nominated("urgent") == n1, what="urgent nominated to n1")
    victim = wait_until(
        lambda: (
            (p := lab.get("low-big")) is not None and p["metadata"].get("deletionTimestamp") and p
        ),
        what="low-big terminating",
    )
    assert lab.preempted() == {"low-big"}
    [condition] = [c for c in victim["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert condition["status"] == "True" and condition["reason"] == "PreemptionByScheduler"
    assert condition["message"] == (
        f"{lab.scheduler_name}: preempting to accommodate a higher priority pod"
    )
    [event] = wait_until(
        lambda: [
            e for e in events_for(lab.kube, lab.namespace, "low-big") if e["reason"] == "Preempted"
        ],
        what="the Preempted event",
    )
    assert event["type"] == "Normal"
    assert event["message"].startswith(
        f"Preempted by pod {urgent['metadata']['uid']} on node {n1}: room for "
        f"{lab.namespace}/urgent (priority 1000, needs 700 Mbps up / 0 Mbps down); "
        "this pod held 600 Mbps up / 0 Mbps down"
    )
    messages = wait_until(lambda: _failed_scheduling(lab, "urgent"), what="FailedScheduling")
    assert messages[0] == (
        "0/2 nodes are available: 2 insufficient network uplink bandwidth (need 700 Mbps). "
        f"preemption: nominated node {n1}, preempting 1 pod(s) of lower priority: "
        f"{lab.namespace}/low-big (priority 10)."
    )

    # The victim terminates slowly: it holds its 600 Mbps, the urgent pod waits for it.
    time.sleep(3)
    assert not (lab.get("urgent") or {})["spec"].get("nodeName")
    assert lab.get("low-small") is not None and lab.get("mid") is not None
    lab.kubelet.finish_deletion("low-big")
    assert lab.wait_bound("urgent") == n1
    ledger = lab.kube.get(BANDWIDTHS.path(name=n1))
    held = {r["podName"]: r["bandwidth"]["ulMbps"] for r in ledger["spec"]["reservations"]}
    assert held == {"low-small": 300, "urgent": 700}
    assert lab.nominated("urgent") in ("", n1)

    report = audit.stop()
    _assert_never_oversubscribed(audit, report)
    assert "low-big" in report.terminating_holders
    assert report.peak[n1][2] == 1000  # network uplink: full, never over
    assert lab.scheduler is not None
    metrics = lab.scheduler.metrics
    attempts = "vaclab_scheduler_preemption_attempts_total"
    assert sample(metrics.preemption_attempts, attempts, {"result": "preempted"}) == 1
    assert sample(metrics.preemption_victims, "vaclab_scheduler_preemption_victims_sum") == 1


def test_the_room_held_for_a_nominated_pod_is_not_taken_by_a_burst_of_lower_priority_pods(
    lab: Lab,
) -> None:
    n1, n2 = lab.add_nodes(2)
    audit = _audit(lab)
    lab.place("low", n1, up=800, started_minutes_ago=30)
    lab.place("mid", n2, priority="mid", up=900, started_minutes_ago=30)
    lab.pod("urgent", priority="high", up=700)
    wait_until(lambda: lab.nominated("urgent") == n1, what="urgent nominated to n1")
    wait_until(
        lambda: (p := lab.get("low")) is not None and p["metadata"].get("deletionTimestamp"),
        what="low terminating",
    )
    # A burst while the victim terminates: n1 shows 200 Mbps free, but 700 are promised.
    fillers = [f"filler-{i}" for i in range(10)]
    for name in fillers:
        lab.pod(name, up=100)
    wait_until(
        lambda: all(
            _failed_scheduling(lab, name) or lab.get(name)["spec"].get("nodeName")  # type: ignore[index]
            for name in fillers
        ),
        what="every filler tried",
    )
    on_n1 = [n for n in fillers if (lab.get(n) or {})["spec"].get("nodeName") == n1]
    assert on_n1 == []
    lab.kubelet.finish_deletion("low")
    assert lab.wait_bound("urgent") == n1
    time.sleep(3)  # let the fillers have their go at what is left
    placed = {n: (lab.get(n) or {})["spec"].get("nodeName") for n in fillers}
    assert sum(1 for node in placed.values() if node == n1) <= 3, placed
    assert sum(1 for node in placed.values() if node == n2) <= 1, placed
    # One preemption, one victim: no filler ever took the urgent pod's room.
    assert lab.preempted_ever() == {"low"}
    assert lab.scheduler is not None
    attempts = "vaclab_scheduler_preemption_attempts_total"
    assert sample(lab.scheduler.metrics.preemption_attempts, attempts, {"result": "preempted"}) == 1
    report = audit.stop()
    _assert_never_oversubscribed(audit, report)
    assert "low" in report.terminating_holders


def test_pod_disruption_budgets_are_honoured(lab: Lab, controller_manager: ControlPlane) -> None:
    n1, n2 = lab.add_nodes(2)
    # Without the budget n1 would be chosen: its victim started last.
    lab.place("db-0", n1, up=800, labels={"app": "db"}, started_minutes_ago=5)
    lab.place("web-0", n2, up=800, labels={"app": "web"}, started_minutes_ago=60)
    lab.kube.create(
        PODDISRUPTIONBUDGETS.path(namespace=lab.namespace),
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "db"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}},
        },
    )
    # The disruption controller counts db-0 healthy (Ready) and allows no disruption.
    wait_until(
        lambda: (
            (
                s := lab.kube.get(
                    PODDISRUPTIONBUDGETS.path(namespace=lab.namespace, name="db")
                ).get("status")
            )
            and s.get("currentHealthy") == 1
            and s.get("disruptionsAllowed") == 0
        ),
        what="the budget's status",
    )
    assert lab.scheduler is not None
    wait_until(
        lambda: any(b.name == "db" for b in lab.scheduler.budgets.current()),  # type: ignore[union-attr]
        what="the scheduler's budget cache",
    )
    lab.pod("urgent", priority="high", up=700)
    wait_until(lambda: lab.nominated("urgent") == n2, what="urgent nominated to n2")
    assert wait_until(lambda: lab.preempted(), what="a victim") == {"web-0"}
    lab.kubelet.finish_deletion("web-0")
    assert lab.wait_bound("urgent") == n2
    assert lab.get("db-0") is not None and not lab.get("db-0")["metadata"].get("deletionTimestamp")  # type: ignore[index]


def test_no_preemption_for_never_an_invalid_request_or_an_unsupported_constraint(lab: Lab) -> None:
    [n1] = lab.add_nodes(1)
    lab.place("low", n1, up=900, started_minutes_ago=30)
    lab.pod("polite", priority="never-high", up=500)
    lab.pod(
        "bad-value",
        priority="high",
        annotations={"kubernetes.io/egress-bandwidth": "fast"},
    )
    lab.pod(
        "claims",
        priority="high",
        up=500,
        extra_spec={"resourceClaims": [{"name": "nic", "resourceClaimName": "nic"}]},
    )
    polite = wait_until(lambda: _failed_scheduling(lab, "polite"), what="polite explained")
    assert polite[0] == (
        "0/1 nodes are available: 1 insufficient network uplink bandwidth (need 500 Mbps). "
        "preemption: not eligible due to preemptionPolicy=Never."
    )
    for name, reason in (
        ("bad-value", "InvalidBandwidthRequest"),
        ("claims", "UnsupportedConstraint"),
    ):
        wait_until(
            lambda name=name, reason=reason: [
                e for e in events_for(lab.kube, lab.namespace, name) if e["reason"] == reason
            ],
            what=f"{name} refused",
        )
    time.sleep(2)
    assert lab.preempted() == set()
    assert lab.get("low") is not None and not lab.get("low")["metadata"].get("deletionTimestamp")  # type: ignore[index]
    assert all(lab.nominated(name) == "" for name in ("polite", "bad-value", "claims"))
    assert lab.scheduler is not None
    attempts = lab.scheduler.metrics.preemption_attempts
    name = "vaclab_scheduler_preemption_attempts_total"
    assert sample(attempts, name, {"result": "not_eligible"}) >= 1
    assert sample(attempts, name, {"result": "preempted"}) == 0


@pytest.mark.parametrize("lab", [{"preemption": False}], indirect=True)
def test_no_preemption_when_turned_off(lab: Lab) -> None:
    """``--no-preemption``: the urgent pod waits, and says nothing of preemption."""
    [n1] = lab.add_nodes(1)
    lab.place("low", n1, up=900, started_minutes_ago=30)
    lab.pod("urgent", priority="high", up=500)
    message = wait_until(lambda: _failed_scheduling(lab, "urgent"), what="urgent explained")[0]
    assert message == (
        "0/1 nodes are available: 1 insufficient network uplink bandwidth (need 500 Mbps)."
    )
    time.sleep(2)
    assert lab.preempted() == set() and lab.nominated("urgent") == ""


def test_a_victim_bound_by_another_scheduler(lab: Lab) -> None:
    [n1] = lab.add_nodes(1)
    audit = _audit(lab)
    lab.pod("theirs", bound_to=n1, up=800)
    lab.kubelet.start("theirs", 30)
    lab.pod("urgent", priority="high", up=500)
    wait_until(lambda: lab.preempted() == {"theirs"}, what="theirs preempted")
    # The nomination is a status write of its own, after the victim's: it may land later.
    wait_until(lambda: lab.nominated("urgent") == n1, what="urgent nominated to n1")
    time.sleep(2)
    assert not (lab.get("urgent") or {})["spec"].get("nodeName")  # it still holds 800 Mbps
    lab.kubelet.finish_deletion("theirs")
    assert lab.wait_bound("urgent") == n1
    report = audit.stop()
    _assert_never_oversubscribed(audit, report)
    assert "theirs" in report.terminating_holders


def test_a_nomination_that_no_longer_helps_is_dropped(lab: Lab) -> None:
    n1, n2 = lab.add_nodes(2)
    lab.place("low", n1, up=800, started_minutes_ago=30)
    lab.place("boss", n2, priority="top", up=800, started_minutes_ago=30)
    lab.pod("urgent", priority="high", up=700)
    wait_until(lambda: lab.nominated("urgent") == n1, what="urgent nominated to n1")
    # n1 is cordoned while its victim terminates: the nominated node is of no use now and
    # n2's pod outranks the urgent one, so nothing is left to preempt.
    lab.kube.patch(f"/api/v1/nodes/{n1}", {"spec": {"unschedulable": True}})
    wait_until(lambda: lab.nominated("urgent") == "", what="the nomination cleared")
    assert lab.preempted() == {"low"}
    message = _failed_scheduling(lab, "urgent")
    assert any(
        m.startswith("0/2 nodes are available: 1 insufficient network uplink") for m in message
    )
