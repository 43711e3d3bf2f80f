"""A node's capacity is lowered below what is reserved on it (a user edits ``spec.capacity``).

The accounting controller reports it (``Oversubscribed`` condition and a Warning event); the
scheduler places nothing more there; nothing is evicted: the pods stay bound and keep their
reservations.
"""

from __future__ import annotations

from collections import Counter

import pytest

from bandwidth.model import parse_bandwidth
from kubeio.resources import BANDWIDTHS
from tests.faults.support import Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]


def _condition(lab: Lab, node: str, kind: str) -> dict[str, str]:
    status = (lab.bandwidth(node) or {}).get("status") or {}
    for entry in status.get("conditions") or []:
        if entry.get("type") == kind:
            return dict(entry)
    return {}


def test_capacity_lowered_below_the_reservations_is_reported_and_nothing_is_evicted(
    lab: Lab,
) -> None:
    accounting = lab.accounting()
    shrunk, spare = lab.make_nodes(2, network_mbps=1000)
    wait_for("both Bandwidths", lambda: len(lab.bandwidths()) == 2)
    scheduler = lab.scheduler()
    scheduler.wait_synced()
    here = {"kubernetes.io/hostname": shrunk}
    lab.create_pods([f"held-{i}" for i in range(8)], node_selector=here)
    wait_for("8 pods bound", lambda: len(lab.bound()) == 8)
    held = set(parse_bandwidth(lab.bandwidth(shrunk) or {}).reservations)
    assert len(held) == 8

    lab.kube.patch(
        BANDWIDTHS.path(name=shrunk), {"spec": {"capacity": {"network": {"ulMbps": 500}}}}
    )
    wait_for(
        "the Oversubscribed condition",
        lambda: _condition(lab, shrunk, "Oversubscribed").get("status") == "True",
    )
    over = _condition(lab, shrunk, "Oversubscribed")
    assert over["reason"] == "NetworkUplink" and "800 of 500" in over["message"], over
    assert (lab.bandwidth(shrunk) or {})["status"]["state"] == "Oversubscribed"
    warning = wait_for(
        "a Warning event",
        lambda: [
            e
            for e in lab.events("Bandwidth", shrunk, namespace="default")
            if e["reason"] == "Oversubscribed"
        ],
    )
    assert warning[0]["type"] == "Warning", warning

    lab.create_pods([f"new-{i:02d}" for i in range(12)])  # 10 fit on the spare node
    lab.create_pod("pinned-late", node_selector=here)
    wait_for("10 new pods bound", lambda: len(lab.bound()) == 18, timeout=60)
    pinned = wait_for(
        "pinned-late explained",
        lambda: [
            e
            for e in lab.events("Pod", "pinned-late")
            if e["reason"] == "FailedScheduling" and "insufficient network uplink" in e["message"]
        ],
    )
    print(f"pinned-late: {pinned[0]['message']}")
    result = lab.settled_audit()
    result.row("capacity lowered below the reservations (1000 -> 500 Mbps, 800 held)")

    assert not result.lost and not result.double and not result.leaked
    assert [entry.split(":")[0] for entry in result.oversubscribed] == [shrunk]
    assert result.bound == Counter({shrunk: 8, spare: 10})
    assert set(parse_bandwidth(lab.bandwidth(shrunk) or {}).reservations) == held
    assert {p for p, n in lab.bound().items() if n == shrunk} == {f"held-{i}" for i in range(8)}
    for daemon in (scheduler, accounting):
        assert daemon.alive(), daemon.tail()
        assert not daemon.tracebacks(), daemon.tail()
