"""One-line errors from real apiserver answers: a resource not served, a missing object,
403 for a ServiceAccount without RBAC, a control plane without the CRD, no server at all."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubectl_bandwidth.errors import CrdMissing, NotFoundError, api_failure
from kubectl_bandwidth.snapshot import Reader
from kubeio.errors import NotFound
from kubeio.resources import BANDWIDTHS, PODS, Resource
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from tests.integration.kubectl_bandwidth.conftest import Kubectl, token_kubeconfig
from tests.integration.scheduler.conftest import wait_until

RBAC_GROUP = "rbac.authorization.k8s.io"
CRD_MISSING = (
    "bandwidths.networking.vaclab.org is not installed on {server}: "
    "kubectl apply -f crds/ (or install the Helm chart)"
)


def test_a_resource_the_server_does_not_serve_reads_as_a_missing_crd(
    kube: KubeApi, namespace: str
) -> None:
    unserved = Resource("networking.vaclab.org", "v1", "nosuchthings", namespaced=False)
    with pytest.raises(NotFound) as raised:
        kube.list(unserved.path())
    failure = api_failure(raised.value, verb="list", resource=unserved, server=kube.host)
    assert isinstance(failure, CrdMissing)
    assert str(failure) == (
        f"nosuchthings.networking.vaclab.org is not installed on {kube.host}: "
        "is its CustomResourceDefinition applied?"
    )
    as_bandwidths = api_failure(raised.value, verb="list", resource=BANDWIDTHS, server=kube.host)
    assert str(as_bandwidths) == CRD_MISSING.format(server=kube.host)
    # A missing object of a served resource is not a missing CRD.
    with pytest.raises(NotFoundError, match=f"pods 'absent' not found in namespace {namespace}"):
        Reader(kube).get(PODS, "absent", namespace=namespace)
    with pytest.raises(
        NotFoundError, match=r"bandwidths\.networking\.vaclab\.org 'absent' not found"
    ):
        Reader(kube).get(BANDWIDTHS, "absent")


@pytest.fixture(scope="module")
def bare_controlplane() -> Iterator[ControlPlane]:
    """A second control plane on which the Bandwidth CRD was never installed."""
    with ControlPlane() as plane:
        yield plane


def test_every_subcommand_says_the_crd_is_missing(
    bare_controlplane: ControlPlane, kubectl: Kubectl, tmp_path: Path
) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text("kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n")
    expected = "kubectl-bandwidth: " + CRD_MISSING.format(server=bare_controlplane.server) + "\n"
    for argv in (
        ["status"],
        ["explain", "p", "-n", "default"],
        ["what-if", "-f", str(manifest)],
        ["reservations", "n1"],
    ):
        run = kubectl(*argv, kubeconfig=bare_controlplane.kubeconfig_path)
        assert (run.code, run.out, run.err) == (1, "", expected), argv


def _service_account_kubeconfig(
    kube: KubeApi, controlplane: ControlPlane, namespace: str, path: Path
) -> tuple[str, Path]:
    name = "nobody"
    kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
    )
    issued = kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )
    user = f"system:serviceaccount:{namespace}:{name}"
    return user, token_kubeconfig(path, controlplane, issued["status"]["token"])


@pytest.fixture
def cluster_role(kube: KubeApi) -> Iterator[Any]:
    """``grant(user, rules)``: a ClusterRole and its binding, deleted after the test."""
    made: list[str] = []

    def grant(user: str, rules: list[dict[str, Any]]) -> None:
        name = f"kubectl-bandwidth-test-{uuid.uuid4().hex[:8]}"
        kube.create(
            f"/apis/{RBAC_GROUP}/v1/clusterroles",
            {"metadata": {"name": name}, "rules": rules},
        )
        made.append(name)
        kube.create(
            f"/apis/{RBAC_GROUP}/v1/clusterrolebindings",
            {
                "metadata": {"name": name},
                "roleRef": {
                    "apiGroup": RBAC_GROUP,
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": [{"kind": "User", "name": user, "apiGroup": RBAC_GROUP}],
            },
        )

    yield grant
    for name in made:
        for kind in ("clusterrolebindings", "clusterroles"):
            with contextlib.suppress(NotFound):
                kube.delete(f"/apis/{RBAC_GROUP}/v1/{kind}/{name}")


def test_access_denied_names_the_verb_and_the_resource(
    kube: KubeApi,
    controlplane: ControlPlane,
    namespace: str,
    kubectl: Kubectl,
    cluster_role: Any,
    tmp_path: Path,
) -> None:
    user, config = _service_account_kubeconfig(kube, controlplane, namespace, tmp_path / "sa")

    denied = kubectl("status", kubeconfig=config)
    assert (denied.code, denied.out) == (1, "")
    assert denied.err == (
        "kubectl-bandwidth: access denied: cannot list bandwidths.networking.vaclab.org "
        "cluster-wide (403 Forbidden: bandwidths.networking.vaclab.org is forbidden: "
        f'User "{user}" cannot list resource "bandwidths" in API group "networking.vaclab.org" '
        "at the cluster scope)\n"
    )
    # Every subcommand needs the cluster-wide view first, even to explain one pod.
    explain = kubectl("explain", "p", "-n", namespace, kubeconfig=config)
    assert explain.err == denied.err

    # With Bandwidth objects and nodes readable, the next refusal is named instead.
    cluster_role(
        user,
        [
            {
                "apiGroups": ["networking.vaclab.org"],
                "resources": ["bandwidths"],
                "verbs": ["list"],
            },
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
        ],
    )
    further = wait_until(
        lambda: (run := kubectl("status", kubeconfig=config)).err.count("bandwidths") == 0 and run,
        what="the ClusterRole to take effect",
    )
    assert further.code == 1
    assert further.err.startswith(
        "kubectl-bandwidth: access denied: cannot list replicasets.apps cluster-wide (403 "
    )


def test_an_unreachable_server_is_one_line(kubectl: Kubectl, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
    )
    run = kubectl("status", kubeconfig=config)
    assert run.code == 1 and run.out == ""
    assert run.err.startswith(
        "kubectl-bandwidth: cannot reach the apiserver at https://127.0.0.1:1"
    )
    assert run.err.count("\n") == 1
    wrong_context = kubectl("status", "--context", "nope", kubeconfig=config)
    assert wrong_context.code == 1
    assert wrong_context.err.startswith("kubectl-bandwidth: cannot load cluster credentials")
