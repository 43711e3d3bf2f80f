"""Fixtures for volume scheduling on the real control plane.

- ``storage`` (function): a ``storage.Storage`` for the test's namespace, cleaned up after.
- ``kube_scheduler`` (function): the stock kube-scheduler v1.37 beside ours, the oracle for
  pods that name ``default-scheduler``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubeio.rest import KubeApi
from localcluster import ControlPlane
from tests.integration.scheduler.volumes.storage import Storage


@pytest.fixture
def storage(kube: KubeApi, namespace: str) -> Iterator[Storage]:
    made = Storage(kube, namespace)
    yield made
    made.cleanup()


@pytest.fixture
def kube_scheduler(controlplane: ControlPlane) -> Iterator[ControlPlane]:
    controlplane.start_kube_scheduler()
    try:
        yield controlplane
    finally:
        controlplane.stop_component("kube-scheduler")
