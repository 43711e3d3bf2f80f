"""A Bandwidth deleted by hand comes back with the reservations of every pod bound to its node,
even when the controller's pod watch is behind (found by the chaos soak: a pod bound while the
controller was cut off, then the object deleted before the pod watch caught up)."""

from __future__ import annotations

from bandwidth.model import parse_bandwidth
from kubeio.resources import BANDWIDTHS

from .conftest import Scope, StartAccounting, make_pod, wait_for

EGRESS = "kubernetes.io/egress-bandwidth"


def test_a_recreated_ledger_is_rebuilt_from_the_apiserver_not_a_lagging_cache(
    scope: Scope, run_accounting: StartAccounting, namespace: str
) -> None:
    (node,) = scope.make_nodes(1)
    # Bound before the controller starts: the Bandwidth it creates holds this pod's entry.
    first = make_pod(scope.kube, namespace, "seen", node=node, annotations={EGRESS: "100M"})
    running = run_accounting()
    wait_for("the ledger with the first pod", lambda: _reserved(scope, node))
    # The controller's pod watch falls behind: it will not see the next pod bound.
    running.controller._pods.stop(timeout=2)
    late = make_pod(scope.kube, namespace, "unseen", node=node, annotations={EGRESS: "200M"})
    old_uid = scope.bandwidth(node)["metadata"]["uid"]  # type: ignore[index]
    scope.kube.delete(BANDWIDTHS.path(name=node))

    def recreated() -> set[str]:
        current = scope.bandwidth(node)
        if current is None or current["metadata"]["uid"] == old_uid:
            return set()
        return set(parse_bandwidth(current).reservations) or {"<empty>"}

    held = wait_for("the Bandwidth created again", recreated, timeout=20)
    assert held == {first["metadata"]["uid"], late["metadata"]["uid"]}


def _reserved(scope: Scope, node: str) -> bool:
    current = scope.bandwidth(node)
    return current is not None and bool(parse_bandwidth(current).reservations)
