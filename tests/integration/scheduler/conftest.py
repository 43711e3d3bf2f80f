"""Fixtures for scheduler tests: an admin ``KubeApi``, Bandwidth objects, pods, and the
scheduler itself running in-process under a per-test name (so pods of other tests are never
ours)."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import new_bandwidth_object, parse_bandwidth
from kubeio.config import load_client_configuration
from kubeio.errors import NotFound
from kubeio.resources import BANDWIDTHS, EVENTS, PODS
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from scheduler.config import SchedulerConfig
from scheduler.loop import Scheduler

JSON = dict[str, Any]


@pytest.fixture(scope="session")
def kube(controlplane: ControlPlane) -> Iterator[KubeApi]:
    api = KubeApi(load_client_configuration(str(controlplane.kubeconfig_path), pool_size=64))
    yield api
    api.close()


@pytest.fixture
def ledgers(kube: KubeApi) -> Iterator[Callable[..., None]]:
    """``make(nodes, network=(ul, dl), local=(ul, dl))``: Bandwidth objects, removed after."""
    made: list[str] = []

    def make(
        nodes: list[str],
        network: tuple[int, int] = (1000, 1000),
        local: tuple[int, int] = (20000, 20000),
    ) -> None:
        capacity = Usage(local=LinkBudget(*local), network=LinkBudget(*network))
        for node in nodes:
            kube.create(BANDWIDTHS.path(), new_bandwidth_object(node, capacity))
            made.append(node)

    yield make
    for node in made:
        with contextlib.suppress(NotFound):
            kube.delete(BANDWIDTHS.path(name=node))


@pytest.fixture
def scheduler_name() -> str:
    return f"vaclab-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def run_scheduler(kube: KubeApi, scheduler_name: str) -> Iterator[Callable[..., Scheduler]]:
    """Start schedulers in this process (each on its own thread); all stop after the test."""
    running: list[tuple[Scheduler, threading.Event, threading.Thread]] = []

    def start(**overrides: Any) -> Scheduler:
        config = SchedulerConfig(scheduler_name=scheduler_name, **overrides)
        scheduler = Scheduler(kube, config)
        stop = threading.Event()
        scheduler.start()
        thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
        thread.start()
        running.append((scheduler, stop, thread))
        deadline = time.monotonic() + 30
        while not scheduler.synced:
            assert time.monotonic() < deadline, "scheduler caches did not sync"
            time.sleep(0.05)
        return scheduler

    yield start
    for scheduler, stop, thread in running:
        stop.set()
        thread.join(5)
        scheduler.close()


def pod_body(
    name: str,
    scheduler_name: str,
    *,
    egress: str | None = None,
    ingress: str | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    cpu: str = "100m",
    extra_spec: JSON | None = None,
) -> JSON:
    notes = dict(annotations or {})
    if egress is not None:
        notes["kubernetes.io/egress-bandwidth"] = egress
    if ingress is not None:
        notes["kubernetes.io/ingress-bandwidth"] = ingress
    spec: JSON = {
        "schedulerName": scheduler_name,
        "containers": [
            {
                "name": "app",
                "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": cpu}},
            }
        ],
    }
    spec.update(extra_spec or {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": notes, "labels": labels or {}},
        "spec": spec,
    }


def create_pod(kube: KubeApi, namespace: str, body: JSON) -> JSON:
    return kube.create(PODS.path(namespace=namespace), body)


def pods_in(kube: KubeApi, namespace: str) -> list[JSON]:
    items, _ = kube.list(PODS.path(namespace=namespace))
    return items


def ledger(kube: KubeApi, node: str) -> JSON:
    return kube.get(BANDWIDTHS.path(name=node))


def reserved_on(kube: KubeApi, node: str) -> Usage:
    return parse_bandwidth(ledger(kube, node)).reserved()


def events_for(kube: KubeApi, namespace: str, pod_name: str) -> list[JSON]:
    items, _ = kube.list(
        EVENTS.path(namespace=namespace), {"fieldSelector": f"involvedObject.name={pod_name}"}
    )
    return items


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)
