"""Credentials never show: not in either daemon's logs (at debug level, stderr and stdout)
nor in their ``/metrics``; and nobody without a role may change reservations.

Two runs through a scheduling round: with a ServiceAccount token (TokenRequest API, as in a
pod), then with the admin client certificate; the token, and the client key, appear nowhere.
The chart's roles themselves (viewer refused, editor allowed, status only for the admin role)
are proven in ``tests/integration/helm/test_rbac.py``; here, an identity with no role at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bandwidth.model import parse_bandwidth
from kubeio.errors import Forbidden, NotFound
from kubeio.guarded import patch_if_spec_unchanged
from kubeio.resources import BANDWIDTHS
from localcluster import ControlPlane
from tests.faults.support import Daemon, Lab, wait_for
from tests.integration.helm.support import (
    allowed,
    api_for,
    service_account_token,
    write_token_kubeconfig,
)

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

BINDINGS = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"


@pytest.fixture
def service_account(lab: Lab) -> Iterator[tuple[str, str]]:
    """``(name, role binding)``: a ServiceAccount of the lab's namespace made cluster-admin."""
    name = "daemon"
    lab.kube.create(
        f"/api/v1/namespaces/{lab.namespace}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
    )
    binding = f"{lab.scope}-daemon"
    lab.kube.create(
        BINDINGS,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": binding},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": lab.namespace}],
        },
    )
    try:
        yield name, binding
    finally:
        with contextlib.suppress(NotFound):
            lab.kube.delete(f"{BINDINGS}/{binding}")


def _scheduling_round(lab: Lab, kubeconfig: Path, tag: str) -> list[Daemon]:
    accounting = lab.accounting("--log-level=debug", kubeconfig=kubeconfig, name=f"acct-{tag}")
    scheduler = lab.scheduler("--log-level=debug", kubeconfig=kubeconfig, name=f"sched-{tag}")
    scheduler.wait_synced()
    wait_for("the Bandwidth", lambda: lab.bandwidth(lab.nodes[0]))
    lab.create_pod(f"round-{tag}", egress="100M")
    wait_for("the pod bound", lambda: lab.bound().get(f"round-{tag}"), timeout=30)
    wait_for("its status", lambda: "round-" + tag in str(lab.bandwidth(lab.nodes[0])))
    return [scheduler, accounting]


def _leaks(daemons: list[Daemon], secrets: list[str]) -> list[str]:
    found = []
    for daemon in daemons:
        places = {"stderr": daemon.text(), "stdout": daemon.out.read_text(), "metrics": ""}
        places["metrics"] = daemon.metrics()
        for place, text in places.items():
            found += [f"{daemon.name} {place}" for secret in secrets if secret in text]
    return found


def test_no_token_or_key_in_logs_or_metrics_at_debug_level(
    lab: Lab, controlplane: ControlPlane, service_account: tuple[str, str]
) -> None:
    lab.make_nodes(1)
    name, _ = service_account
    token = service_account_token(lab.kube, lab.namespace, name)
    kubeconfig = write_token_kubeconfig(
        lab.log_dir / "token.kubeconfig", controlplane.server, controlplane.pki.ca_cert, token
    )
    with_token = _scheduling_round(lab, kubeconfig, "token")
    # The whole token, and each of its three parts (header, claims, signature).
    secrets = [token, *token.split(".")]
    assert not _leaks(with_token, secrets), _leaks(with_token, secrets)
    debug_lines = sum(
        1 for daemon in with_token for e in daemon.events() if e.get("level") == "debug"
    )
    assert debug_lines > 0  # debug logging was on
    for daemon in with_token:
        assert daemon.stop() == 0

    with_key = _scheduling_round(lab, controlplane.kubeconfig_path, "key")
    pem = controlplane.pki.admin_key.read_text()
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    assert not _leaks(with_key, [pem, *body]), _leaks(with_key, [pem, *body])
    for daemon in with_key:
        assert daemon.stop() == 0
    print(
        f"token ({len(token)} chars) and client key ({len(body)} PEM lines) absent from "
        f"{sum(len(d.text().splitlines()) for d in with_token + with_key)} log lines, "
        f"debug lines {debug_lines}, and 4 /metrics scrapes"
    )


def test_an_identity_without_a_role_cannot_change_reservations(
    lab: Lab, controlplane: ControlPlane
) -> None:
    [node] = lab.make_nodes(1)
    accounting = lab.accounting()
    wait_for("the Bandwidth", lambda: lab.bandwidth(node))
    lab.kube.create(
        f"/api/v1/namespaces/{lab.namespace}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody"}},
    )
    token = service_account_token(lab.kube, lab.namespace, "nobody")
    nobody = api_for(
        write_token_kubeconfig(
            lab.log_dir / "nobody.kubeconfig", controlplane.server, controlplane.pki.ca_cert, token
        )
    )
    ledger = parse_bandwidth(lab.bandwidth(node) or {})
    entry = {
        "podName": "p",
        "podNamespace": lab.namespace,
        "podUID": "u",
        "bandwidth": {"ulMbps": 1, "dlMbps": 1},
    }
    path = BANDWIDTHS.path(name=node)
    try:
        for write in (
            lambda: patch_if_spec_unchanged(
                nobody,
                path,
                ledger.uid,
                ledger.generation,
                [{"op": "add", "path": "/spec/reservations", "value": [entry]}],
            ),
            lambda: nobody.patch(path, {"spec": {"capacity": {"network": {"ulMbps": 1}}}}),
            lambda: nobody.delete(path),
            lambda: nobody.patch(BANDWIDTHS.path(name=node, subresource="status"), {}),
        ):
            with pytest.raises(Forbidden):
                write()
        with pytest.raises(Forbidden):
            nobody.get(path)
    finally:
        nobody.close()
    sa = (lab.namespace, "nobody")
    for verb in ("get", "patch", "update", "delete"):
        assert not allowed(lab.kube, sa, verb, "bandwidths", group="networking.vaclab.org")
    assert not parse_bandwidth(lab.bandwidth(node) or {}).reservations
    assert accounting.alive()
