"""Fixtures for the accounting controller on the real control plane.

Nodes are cluster-scoped and the control plane is shared by the whole session, so each test
gets its own node name prefix and scope label, and the controller under test is started with
``--node-selector`` on that label: it never touches another test's nodes.

- ``kube``            — an admin ``KubeApi`` for the test's own reads and writes.
- ``scope``           — the test's ``Scope``: node prefix, scope label, node factory; the
                        nodes and their Bandwidth objects are deleted after the test.
- ``run_accounting``  — start a ``Controller`` in this process (its own ``KubeApi`` whose
                        non-GET requests are counted); stopped when the test ends.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from accounting.controller import Controller
from accounting.settings import AccountingSettings
from bandwidth.model import Reservation, parse_bandwidth, reservations_patch
from bandwidth.request import BandwidthRequest
from kubeio.config import load_client_configuration
from kubeio.errors import Conflict, NotFound
from kubeio.guarded import patch_if_spec_unchanged
from kubeio.labels import LabelSelector
from kubeio.resources import BANDWIDTHS, EVENTS, NODES, PODS
from kubeio.rest import KubeApi
from localcluster import ControlPlane, create_simulated_nodes

JSON = dict[str, Any]
SCOPE_LABEL = "accounting.test.vaclab.org/scope"


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="session")
def kube(controlplane: ControlPlane) -> Iterator[KubeApi]:
    api = KubeApi(load_client_configuration(str(controlplane.kubeconfig_path), pool_size=32))
    yield api
    api.close()


@dataclass
class Scope:
    kube: KubeApi
    api_client: Any
    prefix: str
    nodes: list[str] = field(default_factory=list)

    @property
    def selector(self) -> str:
        return f"{SCOPE_LABEL}={self.prefix}"

    def make_nodes(
        self,
        count: int,
        *,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> list[str]:
        names = create_simulated_nodes(
            self.api_client,
            count,
            name_prefix=self.prefix,
            start_index=len(self.nodes),
            labels={SCOPE_LABEL: self.prefix, **(labels or {})},
            annotations=annotations,
        )
        self.nodes.extend(names)
        return names

    def bandwidth(self, node: str) -> JSON | None:
        with contextlib.suppress(NotFound):
            return self.kube.get(BANDWIDTHS.path(name=node))
        return None

    def bandwidths(self) -> dict[str, JSON]:
        items, _ = self.kube.list(BANDWIDTHS.path())
        return {
            item["metadata"]["name"]: item
            for item in items
            if item["metadata"]["name"].startswith(self.prefix + "-")
        }

    def delete_node(self, node: str) -> None:
        self.kube.delete(NODES.path(name=node))

    def cleanup(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(NotFound):
                self.kube.delete(NODES.path(name=node))
            with contextlib.suppress(NotFound):
                self.kube.delete(BANDWIDTHS.path(name=node))


@pytest.fixture
def scope(kube: KubeApi, api_client: Any) -> Iterator[Scope]:
    made = Scope(kube, api_client, f"acct-{uuid.uuid4().hex[:6]}")
    yield made
    made.cleanup()


READS = ("GET", "LIST", "WATCH")


class RequestCounter:
    """Counts the requests a controller sends, by verb and resource: the writes it costs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()

    def __call__(self, verb: str, resource: str, status: int) -> None:
        with self._lock:
            self.counts[(verb, resource)] += 1

    def writes(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return {key: n for key, n in self.counts.items() if key[0] not in READS}

    def total_writes(self) -> int:
        return sum(self.writes().values())


@dataclass
class RunningController:
    controller: Controller
    api: KubeApi
    requests: RequestCounter
    registry: CollectorRegistry
    stop_event: threading.Event
    thread: threading.Thread

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.registry.get_sample_value(name, labels or {})

    def reconciles(self) -> float:
        return self.metric("vaclab_accounting_reconcile_duration_seconds_count") or 0.0

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)
        self.controller.close()
        self.api.close()


StartAccounting = Callable[..., RunningController]
"""``start(**settings)`` as the ``run_accounting`` fixture hands it to a test."""


@pytest.fixture
def run_accounting(controlplane: ControlPlane, scope: Scope) -> Iterator[StartAccounting]:
    """``start(**settings)``: a controller for the test's nodes, synced and running."""
    running: list[RunningController] = []

    def start(**overrides: Any) -> RunningController:
        # Every status at once: these tests time what they do by what the status shows
        # (test_status_pacing sets the pacing it tests).
        settings = AccountingSettings(
            node_selector=LabelSelector.parse(scope.selector), status_interval_seconds=0.0
        )
        settings = replace(settings, **overrides)
        requests = RequestCounter()
        api = KubeApi(
            load_client_configuration(str(controlplane.kubeconfig_path)),
            user_agent="vaclab-accounting-test",
            observe=requests,
        )
        registry = CollectorRegistry()
        controller = Controller(api, settings, registry=registry)
        controller.start()
        stop = threading.Event()
        thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
        thread.start()
        assert controller.wait_synced(timeout=20), controller.readiness()
        handle = RunningController(controller, api, requests, registry, stop, thread)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        handle.stop()


# ------------------------------------------------------------------------ pods and ledgers
def make_pod(
    kube: KubeApi,
    namespace: str,
    name: str,
    *,
    node: str = "",
    annotations: dict[str, str] | None = None,
    owner: JSON | None = None,
) -> JSON:
    """A pod that no kubelet runs: bound at creation if ``node`` is given."""
    metadata: JSON = {"name": name, "namespace": namespace, "annotations": annotations or {}}
    if owner is not None:
        metadata["ownerReferences"] = [owner]
    spec: JSON = {
        "schedulerName": "nobody",  # no scheduler must touch these pods
        "containers": [{"name": "main", "image": "registry.invalid/none:1"}],
    }
    if node:
        spec["nodeName"] = node
    return kube.create(
        PODS.path(namespace=namespace),
        {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec},
    )


def bind_pod(kube: KubeApi, pod: JSON, node: str) -> None:
    metadata = pod["metadata"]
    kube.create(
        PODS.path(namespace=metadata["namespace"], name=metadata["name"], subresource="binding"),
        {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        },
    )


def set_pod_phase(kube: KubeApi, pod: JSON, phase: str, pod_ip: str = "") -> None:
    metadata = pod["metadata"]
    status: JSON = {"phase": phase}
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    kube.patch(
        PODS.path(namespace=metadata["namespace"], name=metadata["name"], subresource="status"),
        {"status": status},
    )


def delete_pod(kube: KubeApi, pod: JSON) -> None:
    """Delete at once: with no kubelet, a graceful deletion would never finish."""
    metadata = pod["metadata"]
    kube.request(
        "DELETE",
        PODS.path(namespace=metadata["namespace"], name=metadata["name"]),
        body={"gracePeriodSeconds": 0},
    )


def reserve(kube: KubeApi, node: str, pod: JSON, ul: int, dl: int, **extra: Any) -> None:
    """Write a reservation as the scheduler does: optimistic concurrency, retried on 409."""
    metadata = pod["metadata"]
    entry = Reservation(
        pod_uid=metadata["uid"],
        pod_name=metadata["name"],
        pod_namespace=metadata["namespace"],
        request=BandwidthRequest(ul, dl, bool(extra.get("link_local", False))),
        scheduler="test-scheduler",
        reserved_at=extra.get("reserved_at"),
    )
    for _ in range(50):
        current = parse_bandwidth(kube.get(BANDWIDTHS.path(name=node)))
        entries = dict(current.reservations)
        entries[entry.pod_uid] = entry
        try:
            patch_if_spec_unchanged(
                kube,
                BANDWIDTHS.path(name=node),
                current.uid,
                current.generation,
                reservations_patch(entries.values()),
            )
            return
        except Conflict:
            continue
    pytest.fail(f"could not reserve on {node}: kept conflicting")


def reserved_uids(kube: KubeApi, node: str) -> set[str]:
    return set(parse_bandwidth(kube.get(BANDWIDTHS.path(name=node))).reservations)


def events_about(kube: KubeApi, namespace: str, kind: str, name: str) -> list[JSON]:
    items, _ = kube.list(
        EVENTS.path(namespace=namespace),
        {"fieldSelector": f"involvedObject.kind={kind},involvedObject.name={name}"},
    )
    return items


def condition(bandwidth: JSON | None, kind: str) -> JSON:
    for entry in ((bandwidth or {}).get("status") or {}).get("conditions") or []:
        if entry.get("type") == kind:
            return dict(entry)
    return {}
