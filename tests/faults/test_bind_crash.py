"""A bug in the binding path never leaves a pod in flight.

The scheduler runs in-process on a ``KubeApi`` whose first binding of the pod and first read of
it raise a ``RuntimeError``: not an API error, the shape an unforeseen bug has. Before the fix
the error escaped the clean-up after the failed binding (it had no ``try/finally`` around
``_finish``) into the worker pool, which swallowed it: the pod stayed in flight and its
bandwidth assumed for good, with no log line. Now the binding path ends in ``_finish``
whatever is raised: one ``bind_crashed`` line with the pod's key, the pod back in the queue,
then bound.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from structlog.testing import capture_logs

from kubeio.config import load_client_configuration
from kubeio.rest import JSON, KubeApi
from scheduler.config import SchedulerConfig
from scheduler.loop import Scheduler
from tests.faults.support import Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]


class FirstCallsRaise(KubeApi):
    """Raises ``RuntimeError`` on the first binding POST and the first GET of ``pod``."""

    def __init__(self, kubeconfig: str, pod: str) -> None:
        super().__init__(load_client_configuration(kubeconfig))
        self._pod = pod
        self.raised: list[str] = []

    def _trip(self, what: str) -> None:
        if what not in self.raised:
            self.raised.append(what)
            raise RuntimeError(f"injected: {what}")

    def create(self, path: str, body: JSON) -> JSON:
        if path.endswith(f"/pods/{self._pod}/binding"):
            self._trip("binding")
        return super().create(path, body)

    def get(self, path: str, query: Any = None) -> JSON:
        if path.endswith(f"/pods/{self._pod}"):
            self._trip("read")
        return super().get(path, query)


def test_an_unexpected_error_while_binding_sends_the_pod_back_to_the_queue(lab: Lab) -> None:
    accounting = lab.accounting()
    [node] = lab.make_nodes(1, network_mbps=1000)
    wait_for("the Bandwidth", lambda: lab.bandwidth(node))
    api = FirstCallsRaise(str(lab.kubeconfig), "buggy")
    scheduler = Scheduler(api, SchedulerConfig(scheduler_name=lab.scheduler_name))
    stop = threading.Event()
    with capture_logs() as logs:
        scheduler.start()
        thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_for("caches synced", lambda: scheduler.synced)
            lab.create_pod("buggy", egress="100M")
            assert wait_for("buggy bound", lambda: lab.bound().get("buggy"), timeout=30) == node
            wait_for("nothing assumed", lambda: not scheduler.state._assumed)
        finally:
            stop.set()
            thread.join(5)
            scheduler.close()
            api.close()
    result = lab.settled_audit()
    result.row("RuntimeError raised by the first binding and the first read of the pod")

    assert api.raised[0] == "binding", api.raised
    crashed = [e for e in logs if e["event"] == "bind_crashed"]
    assert [e["pod"] for e in crashed] == [f"{lab.namespace}/buggy"], crashed
    assert "buggy" not in scheduler.queue
    result.assert_clean()
    assert accounting.alive(), accounting.tail()
