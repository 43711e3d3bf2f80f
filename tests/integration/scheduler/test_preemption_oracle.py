"""Preemption checked against the real kube-scheduler v1.37.2, where it defines the answer.

Each case is built twice side by side: for kube-scheduler (profile ``vaclab-oracle``) with an
extended resource standing for network uplink bandwidth, and for our scheduler with Bandwidth
objects of the same capacity and the same requests as annotations. Victims are bound at
creation (as by another scheduler) and started by hand, so their start times are the case's.
kube-scheduler's victims (the pods it deletes) and node (the preemptor's nominatedNodeName) must
be ours, by position.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kubeio.errors import NotFound
from kubeio.resources import PODDISRUPTIONBUDGETS, PODS
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from scheduler.loop import Scheduler
from tests.integration.scheduler.conftest import pods_in, wait_until
from tests.integration.scheduler.preemption_support import (
    Kubelet,
    delete_priority_classes,
    make_priority_classes,
)

JSON = dict[str, Any]
ORACLE = "vaclab-oracle"
UPLINK = "vaclab.org/network-uplink"
WORLD_LABEL = "preemption.oracle.vaclab.org/world"
CAPACITY = 1000
PREEMPTOR_PRIORITY = 1000


@dataclass(frozen=True)
class Victim:
    name: str
    priority: int
    up: int
    minutes: int
    """Started this many minutes ago."""
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Case:
    name: str
    nodes: tuple[tuple[Victim, ...], ...]
    need: int
    budgets: tuple[str, ...] = ()
    """``app`` labels each guarded by a PodDisruptionBudget with minAvailable 1."""


CASES = [
    Case(
        "lowest-highest-priority",
        (
            (Victim("a-big", 10, 600, 5), Victim("a-small", 5, 300, 60)),
            (Victim("b-early", 5, 400, 10), Victim("b-late", 5, 500, 5)),
            (Victim("c-only", 20, 900, 30),),
        ),
        need=700,
    ),
    Case(
        "reprieve-longest-running-first",
        ((Victim("x-60", 10, 300, 60), Victim("x-30", 10, 300, 30), Victim("x-5", 10, 300, 5)),),
        need=500,
    ),
    Case(
        "latest-start",
        ((Victim("old", 5, 900, 60),), (Victim("new", 5, 900, 5),)),
        need=600,
    ),
    Case(
        "smallest-priority-sum",
        (
            (Victim("p-a", 5, 500, 30), Victim("p-b", 5, 500, 30)),
            (Victim("q-a", 5, 900, 30),),
        ),
        need=600,
    ),
    Case(
        "budget",
        (
            (Victim("db", 5, 900, 5, (("app", "db"),)),),
            (Victim("web", 5, 900, 60, (("app", "web"),)),),
        ),
        need=600,
        budgets=("db",),
    ),
    Case(
        "nothing-to-take",
        ((Victim("boss", 2000, 900, 30),), (Victim("peer", 1000, 900, 30),)),
        need=600,
    ),
]


@pytest.fixture(scope="module")
def oracle(controlplane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """kube-scheduler with one profile, ``vaclab-oracle``: it touches no other test's pods."""
    config = tmp_path_factory.mktemp("oracle") / "kube-scheduler.yaml"
    config.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        "leaderElection: {leaderElect: false}\n"
        f"clientConnection: {{kubeconfig: {controlplane.work_dir / 'kube-scheduler.kubeconfig'}}}\n"
        f"profiles: [{{schedulerName: {ORACLE}}}]\n"
    )
    controlplane.start_kube_scheduler({"config": str(config)})
    yield
    controlplane.stop_component("kube-scheduler")


@dataclass
class World:
    """One copy of a case: ``kube`` or ``ours``."""

    kind: str
    prefix: str
    nodes: list[str] = field(default_factory=list)

    def pod_name(self, name: str) -> str:
        return f"{self.kind}-{name}"


def _pod(
    world: World, name: str, priority_class: str, up: int, scheduler: str, labels: dict[str, str]
) -> JSON:
    spec: JSON = {
        "priorityClassName": priority_class,
        "schedulerName": scheduler,
        "nodeSelector": {WORLD_LABEL: world.prefix},
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
    }
    metadata: JSON = {"name": world.pod_name(name), "labels": {**labels, WORLD_LABEL: world.prefix}}
    if world.kind == "kube":
        amount = {UPLINK: str(up)}
        spec["containers"][0]["resources"] = {"requests": amount, "limits": amount}
    else:
        metadata["annotations"] = {"kubernetes.io/egress-bandwidth": f"{up}M"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def _budget_settled(kube: KubeApi, namespace: str, name: str) -> bool:
    status = kube.get(PODDISRUPTIONBUDGETS.path(namespace=namespace, name=name)).get("status")
    return (
        bool(status) and status.get("currentHealthy") == 1 and status.get("disruptionsAllowed") == 0
    )


def _outcome(kube: KubeApi, namespace: str, world: World, preemptor: str) -> tuple[str, set[str]]:
    """(nominated node's position or "none", victims' names in the case) once settled."""

    def read() -> tuple[str, set[str]] | None:
        pods = [p for p in pods_in(kube, namespace) if p["metadata"]["name"].startswith(world.kind)]
        victims = {
            p["metadata"]["name"].removeprefix(f"{world.kind}-")
            for p in pods
            if p["metadata"].get("deletionTimestamp")
        }
        [pod] = [p for p in pods if p["metadata"]["name"] == world.pod_name(preemptor)]
        status = pod.get("status") or {}
        nominated = status.get("nominatedNodeName")
        if nominated:
            return str(world.nodes.index(nominated)), victims
        # Either scheduler writes the condition after its PostFilter ran.
        refused = any(
            c.get("type") == "PodScheduled" and c.get("status") == "False"
            for c in status.get("conditions") or []
        )
        return ("none", victims) if refused else None

    # Victims are deleted after the nomination (kube-scheduler's asynchronously): the same
    # answer twice, 1.5 s apart, is the settled one.
    seen = wait_until(read, timeout=60, what=f"{world.kind}: a preemption outcome")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(1.5)
        again = read()
        if again == seen:
            return seen
        seen = again
    raise AssertionError(f"{world.kind}: the outcome did not settle (last: {seen})")


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_our_victims_and_node_are_kube_schedulers(
    case: Case,
    oracle: None,
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Callable[..., list[str]],
    ledgers: Callable[..., None],
    run_scheduler: Callable[..., Scheduler],
    scheduler_name: str,
) -> None:
    run = uuid.uuid4().hex[:6]
    values = sorted({v.priority for node in case.nodes for v in node} | {PREEMPTOR_PRIORITY})
    classes = make_priority_classes(kube, f"oracle-{run}", {f"p{v}": v for v in values})
    kubelet = Kubelet(kube, namespace)
    try:
        worlds = {kind: World(kind, f"{kind}-{run}") for kind in ("kube", "ours")}
        for world in worlds.values():
            world.nodes = simulated_nodes(
                len(case.nodes),
                labels={WORLD_LABEL: world.prefix},
                extended_resources={UPLINK: str(CAPACITY)} if world.kind == "kube" else None,
            )
        ledgers(worlds["ours"].nodes, network=(CAPACITY, CAPACITY))
        budgets = [(f"{app}-{w.kind}", app, w) for app in case.budgets for w in worlds.values()]
        for name, app, world in budgets:
            selector = {"matchLabels": {"app": app, WORLD_LABEL: world.prefix}}
            kube.create(
                PODDISRUPTIONBUDGETS.path(namespace=namespace),
                {
                    "apiVersion": "policy/v1",
                    "kind": "PodDisruptionBudget",
                    "metadata": {"name": name},
                    "spec": {"minAvailable": 1, "selector": selector},
                },
            )
        for world in worlds.values():
            for index, victims in enumerate(case.nodes):
                for victim in victims:
                    body = _pod(
                        world,
                        victim.name,
                        classes[f"p{victim.priority}"],
                        victim.up,
                        "nobody",
                        dict(victim.labels),
                    )
                    body["spec"]["nodeName"] = world.nodes[index]
                    kube.create(PODS.path(namespace=namespace), body)
                    kubelet.start(world.pod_name(victim.name), victim.minutes)
        for name, _, _ in budgets:  # the disruption controller: one healthy, none allowed
            wait_until(
                lambda name=name: _budget_settled(kube, namespace, name),
                what=f"budget {name}'s status",
            )
        ours = run_scheduler()
        wait_until(
            lambda: {b.name for b in ours.budgets.current()} >= {name for name, _, _ in budgets},
            what="our budget cache",
        )
        preemptor_class = classes[f"p{PREEMPTOR_PRIORITY}"]
        for world, scheduler in ((worlds["kube"], ORACLE), (worlds["ours"], scheduler_name)):
            kube.create(
                PODS.path(namespace=namespace),
                _pod(world, "urgent", preemptor_class, case.need, scheduler, {}),
            )
        expected = _outcome(kube, namespace, worlds["kube"], "urgent")
        assert _outcome(kube, namespace, worlds["ours"], "urgent") == expected
    finally:
        for pod in pods_in(kube, namespace):
            with contextlib.suppress(NotFound):
                kube.request(
                    "DELETE",
                    PODS.path(namespace=namespace, name=pod["metadata"]["name"]),
                    body={"gracePeriodSeconds": 0},
                )
        delete_priority_classes(kube, classes.values())
