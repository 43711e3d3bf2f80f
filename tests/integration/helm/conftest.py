"""Fixtures for the chart's tests.

- ``helm_binary`` (session): the helm that ``make controlplane`` builds; a missing binary, or
  one of another version than ``HELM_VERSION``, FAILS the test with the hint.
- ``offline_helm`` (session): that helm with no cluster, for ``lint``, ``template`` and
  ``package``.
- ``cluster_helm`` (session): that helm talking to the session's control plane as admin.
- ``kube`` (session): an admin ``KubeApi`` for the test's own reads and writes.
- ``release`` (function): install the chart into the test's namespace under a unique
  release name (``release.install(values)``); uninstalled when the test ends, so the
  cluster-scoped roles and bindings do not pile up.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeio.config import load_client_configuration
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from localcluster.binaries import HELM_VERSION
from localcluster.helm import Helm, HelmError, MissingBinaryError, find_helm, helm_version
from tests.integration.helm.support import Release


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    try:
        binary = find_helm()
    except MissingBinaryError as exc:
        pytest.fail(f"helm missing: {exc}", pytrace=False)
    # The cache skips binaries that exist: a helm of another version stays until removed.
    version = helm_version(binary)
    if version != HELM_VERSION:
        pytest.fail(
            f"{binary} is helm {version}, not {HELM_VERSION}: remove it and run make controlplane",
            pytrace=False,
        )
    return binary


@pytest.fixture(scope="session")
def offline_helm(helm_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(helm_binary, tmp_path_factory.mktemp("helm-offline"))


@pytest.fixture(scope="session")
def cluster_helm(
    helm_binary: Path, controlplane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Helm:
    return Helm(helm_binary, tmp_path_factory.mktemp("helm-cluster"), controlplane.kubeconfig_path)


@pytest.fixture(scope="session")
def kube(controlplane: ControlPlane) -> Iterator[KubeApi]:
    api = KubeApi(load_client_configuration(str(controlplane.kubeconfig_path)))
    yield api
    api.close()


@pytest.fixture
def release(cluster_helm: Helm, kube: KubeApi, namespace: str) -> Iterator[Release]:
    installed = Release(cluster_helm, kube, f"r{uuid.uuid4().hex[:6]}", namespace)
    yield installed
    if installed.values is not None:
        with contextlib.suppress(HelmError):
            cluster_helm.uninstall(installed.name, namespace)
