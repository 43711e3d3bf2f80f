"""Fixtures for the differential tests against kube-scheduler v1.37.2, on the session's control
plane: kube-scheduler itself (only while this folder's tests run: it would bind the pods of
other tests that leave ``schedulerName`` unset), our scheduler's view of the cluster, and the
harness that compares them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.contenders import KubeScheduler
from kubeio.config import load_client_configuration
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from scheduler.config import SchedulerConfig
from scheduler.loop import Scheduler
from tests.conformance.harness import Harness, Outcomes


@pytest.fixture(scope="module")
def conformance_api(controlplane: ControlPlane) -> Iterator[KubeApi]:
    api = KubeApi(load_client_configuration(str(controlplane.kubeconfig_path), pool_size=64))
    yield api
    api.close()


@pytest.fixture(scope="module")
def kube_scheduler(
    controlplane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    contender = KubeScheduler()
    contender.start(controlplane, Path(tmp_path_factory.mktemp("kube-scheduler")))
    yield
    contender.stop()


@pytest.fixture(scope="module")
def our_view(conformance_api: KubeApi) -> Iterator[Scheduler]:
    """Our scheduler's caches and state, started but never run: it only judges."""
    ours = Scheduler(conformance_api, SchedulerConfig(scheduler_name="vaclab-conformance"))
    ours.start()
    for cache in ours.caches:
        assert cache.wait_synced(30), f"{cache.kind} cache did not sync"
    yield ours
    ours.close()


@pytest.fixture(scope="module")
def outcomes(conformance_api: KubeApi, kube_scheduler: None) -> Iterator[Outcomes]:
    watch = Outcomes(conformance_api)
    watch.start()
    yield watch
    watch.stop()


@pytest.fixture
def harness(conformance_api: KubeApi, our_view: Scheduler, outcomes: Outcomes) -> Harness:
    return Harness(conformance_api, our_view, outcomes, run=uuid.uuid4().hex[:4])
