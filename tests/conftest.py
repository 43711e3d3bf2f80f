"""Fixtures shared by every test folder.

- ``controlplane`` (session): one real etcd + kube-apiserver for the whole run, with the
  repository's CRDs installed. Missing binaries FAIL the test with a hint to run
  ``make controlplane``; nothing is skipped silently.
- ``api_client`` (session): an admin ``kubernetes.client.ApiClient`` for it.
- ``namespace`` (function): a fresh namespace per test (with its ``default``
  ServiceAccount), deleted afterwards.
- ``controller_manager`` (function): kube-controller-manager on the session control plane
  for the test that asks for it, stopped afterwards.

Every test that uses the control plane (directly or through another fixture) is marked
``controlplane``, so ``-m "not controlplane"`` selects the tests that need no server.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from kubernetes.client import ApiClient

from localcluster import ControlPlane, MissingBinaryError, install_crds, rawapi

CONTROLPLANE_FIXTURES = frozenset({"controlplane", "api_client", "namespace", "controller_manager"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CONTROLPLANE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.controlplane)


@pytest.fixture(scope="session")
def controlplane() -> Iterator[ControlPlane]:
    cp = ControlPlane()
    try:
        cp.start()
    except MissingBinaryError as exc:
        pytest.fail(f"control plane binaries missing: {exc}", pytrace=False)
    try:
        with cp.api_client() as client:
            install_crds(client)
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def api_client(controlplane: ControlPlane) -> Iterator[ApiClient]:
    with controlplane.api_client() as client:
        yield client


@pytest.fixture
def controller_manager(controlplane: ControlPlane) -> Iterator[ControlPlane]:
    """kube-controller-manager for one test only: its garbage collector and workload
    controllers would act on the hand-made owners of tests that run without it."""
    controlplane.start_controller_manager()
    try:
        yield controlplane
    finally:
        controlplane.stop_component("kube-controller-manager")


def _namespace_name(test_name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"t-{slug}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def namespace(api_client: ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    name = _namespace_name(request.node.name)
    rawapi.request_ok(
        api_client,
        "POST",
        "/api/v1/namespaces",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    # Pods need the `default` ServiceAccount (ServiceAccount admission); without
    # kube-controller-manager nobody else creates it.
    status, body = rawapi.request(
        api_client,
        "POST",
        f"/api/v1/namespaces/{name}/serviceaccounts",
        body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
    )
    assert status in (201, 409), body
    try:
        yield name
    finally:
        rawapi.request(api_client, "DELETE", f"/api/v1/namespaces/{name}")
