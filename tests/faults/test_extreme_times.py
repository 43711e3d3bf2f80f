"""Reservations dated at the edges of the calendar: valid RFC 3339, absurd instants.

``9999-12-31T23:59:59-01:00`` is in the year 10000 once in UTC and ``0001-01-01T00:00:00+01:00``
in the year 0: the CRD's ``date-time`` format accepts both. Before the fix both daemons met
``OverflowError`` (the scheduler when it wrote the ledger again, the accounting controller when
it added the grace period), so the node's ledger could no longer be written and the
reservations were never released.

Now such a time counts as no time at all: its grace period starts when the accounting
controller first sees it; the scheduler reports the entry (``InvalidBandwidthObject``) and
goes on writing the ledger; a representable time far in the future is not allowed to hold
bandwidth for ever either.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bandwidth.model import parse_bandwidth
from kubeio.guarded import patch_if_spec_unchanged
from kubeio.resources import BANDWIDTHS
from tests.faults.support import Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

EXTREMES = {
    "year-10000": "9999-12-31T23:59:59-01:00",
    "year-0": "0001-01-01T00:00:00+01:00",
    "far-future": "9999-12-31T00:00:00Z",
    "far-past": "0001-01-02T00:00:00Z",
}


def test_reservations_dated_at_the_edges_of_the_calendar_neither_jam_nor_stick(
    lab: Lab,
) -> None:
    accounting = lab.accounting("--unbound-reservation-grace=4s")
    [node] = lab.make_nodes(1, network_mbps=1000)
    wait_for("the Bandwidth", lambda: lab.bandwidth(node))
    scheduler = lab.scheduler()
    scheduler.wait_synced()

    entries = []
    for name, stamp in EXTREMES.items():
        pod = lab.create_pod(name, egress="100M", scheduler_name="nobody")  # never bound
        entries.append(
            {
                "podName": name,
                "podNamespace": lab.namespace,
                "podUID": pod["metadata"]["uid"],
                "bandwidth": {"ulMbps": 100, "dlMbps": 0},
                "scheduler": "someone",
                "reservedAt": stamp,
            }
        )
    ledger = parse_bandwidth(lab.bandwidth(node) or {})
    patch_if_spec_unchanged(
        lab.kube,
        BANDWIDTHS.path(name=node),
        ledger.uid,
        ledger.generation,
        [{"op": "add", "path": "/spec/reservations", "value": entries}],
    )
    written_at = datetime.now(UTC)
    lab.create_pods([f"plain-{i}" for i in range(3)], egress="100M")

    wait_for("the plain pods bound", lambda: len(lab.bound()) == 3, timeout=30)
    held = {e["podName"]: e for e in (lab.bandwidth(node) or {})["spec"]["reservations"]}
    assert {f"plain-{i}" for i in range(3)} <= set(held), held
    released = wait_for(
        "the four released",
        lambda: len(accounting.named("reservation_released")) >= 4 and accounting,
        timeout=30,
    )
    took = (datetime.now(UTC) - written_at).total_seconds()
    reasons = {e["pod"].split("/")[1]: e["reason"] for e in released.named("reservation_released")}
    assert reasons == dict.fromkeys(EXTREMES, "NeverBound"), reasons
    warned = " ".join(e["problem"] for e in scheduler.named("bandwidth_object_invalid"))
    for name in ("year-10000", "year-0"):
        assert EXTREMES[name] in warned, warned
    # The status after the releases: paced (one write a second while the node stays Ready).
    wait_for(
        "the status counting the three plain pods",
        lambda: (
            (status := (lab.bandwidth(node) or {}).get("status") or {}).get("state") == "Ready"
            and status["used"]["network"]["ulMbps"] == 300
        ),
        timeout=10,
    )
    print(f"all four released {took:.1f}s after they were written (grace 4 s)")
    result = lab.settled_audit()
    result.row("reservedAt at 9999-12-31T23:59:59-01:00, 0001-01-01T00:00:00+01:00 and beyond")

    result.assert_clean()
    for daemon in (scheduler, accounting):
        assert daemon.alive(), daemon.tail()
        assert not daemon.tracebacks(), daemon.tail()
        assert not daemon.named("reconcile_crashed"), daemon.named("reconcile_crashed")
