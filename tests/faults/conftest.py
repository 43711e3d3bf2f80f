"""Fixtures for the fault tests: both daemons run as child processes (as in a pod), the test
breaks something on purpose (a fault, bad input, a credential to leak), and every test ends
with an audit of the books (``support``). ``docs/reliability.md`` tabulates what they print.

- ``kube``                 — an admin ``KubeApi`` on the shared session control plane.
- ``lab``                  — a :class:`~tests.faults.support.Lab` on the shared control plane:
                             its own node scope, namespace and scheduler name, so its daemons
                             never touch another test's objects; everything is removed after.
- ``private_lab``          — a factory ``make(crds=True, etcd_args=None)`` of a dedicated
                             ``ControlPlane`` and a lab on it, for faults that must not disturb
                             the shared one (apiserver restart, etcd compaction, CRD missing,
                             a smaller etcd request limit); stopped after.

Daemon logs are kept under the test's ``tmp_path`` (``<name>.log``), which pytest prints on
failure through the assertion messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes.client import ApiClient

from kubeio.config import load_client_configuration
from kubeio.rest import KubeApi
from localcluster import ControlPlane, MissingBinaryError, install_crds
from tests.faults.support import Lab


@pytest.fixture(scope="session")
def kube(controlplane: ControlPlane) -> Iterator[KubeApi]:
    api = KubeApi(load_client_configuration(str(controlplane.kubeconfig_path), pool_size=32))
    yield api
    api.close()


@pytest.fixture
def lab(
    kube: KubeApi, api_client: ApiClient, controlplane: ControlPlane, tmp_path: Path
) -> Iterator[Lab]:
    made = Lab(kube, api_client, controlplane.kubeconfig_path, tmp_path)
    made.create_namespace()
    try:
        yield made
    finally:
        made.cleanup()


PrivateLab = Callable[..., tuple[ControlPlane, Lab]]


@pytest.fixture
def private_lab(tmp_path: Path) -> Iterator[PrivateLab]:
    started: list[tuple[ControlPlane, ApiClient, KubeApi, Lab]] = []

    def make(
        *, crds: bool = True, etcd_args: dict[str, str] | None = None
    ) -> tuple[ControlPlane, Lab]:
        cp = ControlPlane(etcd_args=etcd_args)
        try:
            cp.start()
        except MissingBinaryError as exc:
            pytest.fail(f"control plane binaries missing: {exc}", pytrace=False)
        client = cp.api_client()
        if crds:
            install_crds(client)
        api = KubeApi(load_client_configuration(str(cp.kubeconfig_path), pool_size=32))
        made = Lab(api, client, cp.kubeconfig_path, tmp_path)
        made.create_namespace()
        started.append((cp, client, api, made))
        return cp, made

    yield make
    for cp, client, api, made in started:
        for daemon in made.daemons:
            daemon.kill()
        with contextlib.suppress(Exception):
            api.close()
            client.close()
        cp.stop()
