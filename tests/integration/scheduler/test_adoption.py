"""A reservation left by a replica that stopped between reserve and bind is adopted: the pod is
bound where it is reserved, and the entry is renewed first (a guarded write), so that the
accounting controller's NeverBound release, decided on the old ``reservedAt``, fails its
generation test instead of removing the entry of a pod that is being bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bandwidth.model import Reservation, parse_bandwidth, reservations_patch
from bandwidth.request import BandwidthRequest
from kubeio.guarded import patch_if_spec_unchanged
from kubeio.resources import BANDWIDTHS
from kubeio.rest import KubeApi
from tests.integration.scheduler.conftest import (
    create_pod,
    ledger,
    pod_body,
    pods_in,
    wait_until,
)


def test_an_orphaned_reservation_is_renewed_then_bound_where_it_is(
    kube: KubeApi,
    namespace: str,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    first, second = simulated_nodes(2)
    ledgers([first, second])
    pod = create_pod(kube, namespace, pod_body("orphan", scheduler_name, egress="100M"))
    long_ago = datetime.now(UTC) - timedelta(seconds=50)
    before = parse_bandwidth(ledger(kube, second))
    entry = Reservation(
        pod_uid=pod["metadata"]["uid"],
        pod_name="orphan",
        pod_namespace=namespace,
        request=BandwidthRequest(100, 0),
        scheduler="a-replica-that-died",
        reserved_at=long_ago,
    )
    patch_if_spec_unchanged(
        kube,
        BANDWIDTHS.path(name=second),
        before.uid,
        before.generation,
        reservations_patch([entry]),
    )
    started = datetime.now(UTC).replace(microsecond=0)

    run_scheduler()

    def node_of_orphan() -> str | None:
        [found] = pods_in(kube, namespace)
        return found["spec"].get("nodeName")

    # Left to itself the decision would take the first node (equal scores, ties by name).
    assert wait_until(node_of_orphan, what="the orphan bound") == second
    [renewed] = parse_bandwidth(ledger(kube, second)).reservations.values()
    assert renewed.pod_uid == pod["metadata"]["uid"]
    assert renewed.scheduler == scheduler_name
    assert renewed.reserved_at is not None and renewed.reserved_at >= started
    assert not parse_bandwidth(ledger(kube, first)).reservations
