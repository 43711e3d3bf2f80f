"""A node deleted between the decision and the binding: the pod is not bound to it.

The apiserver binds a pod to a node name whether or not the node exists, so a binding decided
before the node went would strand the pod there (only a garbage collector would ever remove
it). The binder checks the node watch before it reserves and before it binds.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bandwidth.model import parse_bandwidth
from kubeio.config import load_client_configuration
from kubeio.rest import JSON, JSON_PATCH, MERGE_PATCH, KubeApi
from localcluster import ControlPlane
from scheduler.config import SchedulerConfig
from scheduler.loop import Scheduler
from tests.integration.scheduler.conftest import (
    create_pod,
    ledger,
    pod_body,
    pods_in,
    wait_until,
)


class NodeDeletedOnReserve(KubeApi):
    """Deletes the node just as the scheduler writes its first reservation, and lets the
    write go on once the scheduler's node watch has seen the deletion."""

    def __init__(self, controlplane: ControlPlane, kube: KubeApi, node: str) -> None:
        super().__init__(load_client_configuration(str(controlplane.kubeconfig_path)))
        self._kube = kube
        self._node = node
        self.scheduler: Scheduler | None = None
        self.deleted = threading.Event()

    def patch(self, path: str, patch: Any, content_type: str = MERGE_PATCH) -> JSON:
        self._before_patch(path, content_type)
        return super().patch(path, patch, content_type)

    def patch_unread(self, path: str, patch: Any, content_type: str = MERGE_PATCH) -> None:
        self._before_patch(path, content_type)
        super().patch_unread(path, patch, content_type)

    def _before_patch(self, path: str, content_type: str) -> None:
        if content_type == JSON_PATCH and "/bandwidths/" in path and not self.deleted.is_set():
            self.deleted.set()
            self._kube.delete(f"/api/v1/nodes/{self._node}")
            wait_until(self._deletion_seen, what="the scheduler to see the node deleted")

    def _deletion_seen(self) -> bool:
        assert self.scheduler is not None
        with self.scheduler.state.lock:
            info = self.scheduler.state.nodes.get(self._node)
            return info is None or info.facts is None


def test_a_pod_is_not_bound_to_a_node_deleted_while_it_was_being_reserved(
    kube: KubeApi,
    controlplane: ControlPlane,
    namespace: str,
    simulated_nodes: Any,
    ledgers: Any,
    scheduler_name: str,
) -> None:
    [node] = simulated_nodes(1)
    ledgers([node])
    api = NodeDeletedOnReserve(controlplane, kube, node)
    scheduler = Scheduler(api, SchedulerConfig(scheduler_name=scheduler_name))
    api.scheduler = scheduler
    stop = threading.Event()
    scheduler.start()
    thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: scheduler.synced, what="caches synced")
        create_pod(kube, namespace, pod_body("late", scheduler_name, egress="100M"))
        wait_until(api.deleted.is_set, what="the node deleted during the reservation")
        wait_until(
            lambda: not parse_bandwidth(ledger(kube, node)).reservations,
            what="the reservation undone",
        )
        time.sleep(1.0)
        [pod] = pods_in(kube, namespace)
        assert not pod["spec"].get("nodeName"), "bound to a node that is gone"
    finally:
        stop.set()
        thread.join(5)
        scheduler.close()
        api.close()
