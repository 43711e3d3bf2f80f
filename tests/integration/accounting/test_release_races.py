"""Writes of the controller that race with someone else's.

A release decided on a pod read before a lost write race is decided again on a fresh read.

The controller reads an expired reservation's pod (unbound), and its release loses the
generation race to another writer; meanwhile the pod was bound. The next attempt must read the
pod again, not reuse the read from before the race, or it releases the reservation of a pod
that is bound (as the fault test that SIGKILLs the scheduler mid-burst found).

A Bandwidth of a deleted node that is gone already when the controller deletes it (its own
earlier reconcile, seen late by the cache) is not counted or logged as deleted a second time
(as the fault test that deletes a node mid-burst found).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from accounting.controller import Controller
from accounting.settings import AccountingSettings
from kubeio.config import load_client_configuration
from kubeio.labels import LabelSelector
from kubeio.rest import JSON, JSON_PATCH, MERGE_PATCH, KubeApi
from localcluster import ControlPlane

from .conftest import Scope, bind_pod, make_pod, reserve, reserved_uids, wait_for


class DeletedFirstBySomeoneElse(KubeApi):
    """Deletes a Bandwidth with the admin client just before the controller does."""

    def __init__(self, kubeconfig: str, kube: KubeApi) -> None:
        super().__init__(load_client_configuration(kubeconfig), user_agent="accounting-test")
        self._kube = kube
        self.raced = threading.Event()

    def delete(self, path: str, *, preconditions: JSON | None = None) -> None:
        if "/bandwidths/" in path:
            self._kube.delete(path)
            self.raced.set()
        super().delete(path, preconditions=preconditions)


class RacedOnFirstRelease(KubeApi):
    """Runs ``race`` just before the controller's first JSON Patch of a Bandwidth's spec."""

    def __init__(self, kubeconfig: str, race: Any) -> None:
        super().__init__(load_client_configuration(kubeconfig), user_agent="accounting-test")
        self._race = race
        self.raced = threading.Event()

    def patch(self, path: str, patch: Any, content_type: str = MERGE_PATCH) -> JSON:
        if content_type == JSON_PATCH and "/bandwidths/" in path and not self.raced.is_set():
            self.raced.set()
            self._race()
        return super().patch(path, patch, content_type)


def test_a_pod_bound_while_its_release_lost_a_race_keeps_its_reservation(
    controlplane: ControlPlane, scope: Scope, namespace: str
) -> None:
    [node] = scope.make_nodes(1)
    slow = make_pod(scope.kube, namespace, "slow")  # reserved long ago, still unbound
    other = make_pod(scope.kube, namespace, "other", node=node)

    def race() -> None:
        bind_pod(scope.kube, slow, node)  # the scheduler binds it at last ...
        reserve(scope.kube, node, other, 1, 1)  # ... and writes the ledger first

    api = RacedOnFirstRelease(str(controlplane.kubeconfig_path), race)
    settings = AccountingSettings(
        node_selector=LabelSelector.parse(scope.selector), unbound_grace_seconds=2.0
    )
    controller = Controller(api, settings, registry=CollectorRegistry())
    stop = threading.Event()
    controller.start()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for("the Bandwidth", lambda: scope.bandwidth(node), timeout=20)
        reserve(
            scope.kube, node, slow, 100, 100, reserved_at=datetime.now(UTC) - timedelta(minutes=1)
        )
        wait_for("the release to meet the race", api.raced.is_set, timeout=10)
        both = {slow["metadata"]["uid"], other["metadata"]["uid"]}
        wait_for("both reservations written", lambda: reserved_uids(scope.kube, node) == both)
        # Give the controller every chance to release it by mistake.
        wait_for(
            "the status to charge the bound pod",
            lambda: any(
                entry["podName"] == "slow"
                for entry in ((scope.bandwidth(node) or {}).get("status") or {}).get(
                    "reservations", []
                )
            ),
        )
        assert reserved_uids(scope.kube, node) == both
    finally:
        stop.set()
        thread.join(timeout=10)
        controller.close()
        api.close()


def test_a_bandwidth_deleted_by_someone_else_first_is_not_counted_as_deleted(
    controlplane: ControlPlane, scope: Scope
) -> None:
    api = DeletedFirstBySomeoneElse(str(controlplane.kubeconfig_path), scope.kube)
    registry = CollectorRegistry()
    settings = AccountingSettings(node_selector=LabelSelector.parse(scope.selector))
    controller = Controller(api, settings, registry=registry)
    stop = threading.Event()
    controller.start()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        [node] = scope.make_nodes(1)
        wait_for("the Bandwidth", lambda: scope.bandwidth(node), timeout=20)
        scope.delete_node(node)
        wait_for("the controller's delete to meet the race", api.raced.is_set, timeout=10)
        time.sleep(1.0)
        deleted = registry.get_sample_value("vaclab_accounting_bandwidths_deleted_total")
        assert deleted == 0.0
        assert scope.bandwidth(node) is None
    finally:
        stop.set()
        thread.join(timeout=10)
        controller.close()
        api.close()
