"""Bandwidth objects edited by hand into odd shapes the schema allows.

- ``spec.node`` and ``spec.reservations`` removed: read as "named after the node, nothing
  reserved";
- capacities at the schema's maximum (10^9 Mbps on every axis): used like any other number;
- reservations for pods that do not exist: released (``PodDeleted``) with an event;
- a status written by hand: replaced by the true one;
- an object for a node that does not exist: never scheduled on (the controller, scoped to
  this test's nodes by ``--node-selector``, leaves it alone; unscoped it would mark it
  ``NodeNotFound``, see ``tests/unit/accounting/test_status.py``);
- an object named after no node whose ``spec.node`` names a real one: ignored with a warning,
  never taken for that node's ledger.

Both daemons keep working throughout: pods are scheduled on the odd nodes and elsewhere, and
the books stay exact.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from functools import partial

import pytest

from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import Reservation, capacity_json, new_bandwidth_object, parse_bandwidth
from bandwidth.request import BandwidthRequest
from kubeio.guarded import patch_if_spec_unchanged
from kubeio.resources import BANDWIDTHS
from kubeio.rest import JSON_PATCH
from tests.faults.support import Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

SCHEMA_MAX = 1_000_000_000


def _true_and_empty(lab: Lab, name: str) -> bool:
    status = (lab.bandwidth(name) or {}).get("status") or {}
    empty = {"ulMbps": 0, "dlMbps": 0}
    return bool(status.get("state") == "Ready" and status["used"]["network"] == empty)


def test_hand_edited_bandwidths_are_read_repaired_or_ignored_and_both_daemons_go_on(
    lab: Lab,
) -> None:
    accounting = lab.accounting("--resync-period=2s")
    bare, huge, ghosts, scribbled = lab.make_nodes(4, network_mbps=1000)
    wait_for("a Bandwidth per node", lambda: len(lab.bandwidths()) == 4)
    scheduler = lab.scheduler()
    scheduler.wait_synced()

    # 1. No spec.node, no spec.reservations.
    lab.kube.patch(
        BANDWIDTHS.path(name=bare),
        [
            {"op": "remove", "path": "/spec/node"},
            {"op": "remove", "path": "/spec/reservations"},
        ],
        JSON_PATCH,
    )
    # 2. The schema's maximum everywhere.
    maximum = Usage(LinkBudget(SCHEMA_MAX, SCHEMA_MAX), LinkBudget(SCHEMA_MAX, SCHEMA_MAX))
    lab.kube.patch(BANDWIDTHS.path(name=huge), {"spec": {"capacity": capacity_json(maximum)}})
    # 3. Reservations of pods that were never there.
    before = parse_bandwidth(lab.bandwidth(ghosts) or {})
    phantoms = [
        Reservation(
            pod_uid=str(uuid.uuid4()),
            pod_name=f"phantom-{i}",
            pod_namespace=lab.namespace,
            request=BandwidthRequest(400, 400),
            scheduler="someone",
            reserved_at=datetime.now(UTC),
        )
        for i in range(2)
    ]
    patch_if_spec_unchanged(
        lab.kube,
        BANDWIDTHS.path(name=ghosts),
        before.uid,
        before.generation,
        [{"op": "add", "path": "/spec/reservations", "value": [p.to_json() for p in phantoms]}],
    )
    # 4. A status made up by hand.
    lab.kube.patch(
        BANDWIDTHS.path(name=scribbled, subresource="status"),
        {
            "status": {
                "state": "Oversubscribed",
                "used": {"network": {"ulMbps": 123456789, "dlMbps": -5}},
                "reservations": [{"podName": "nobody", "source": "Observed", "ulMbps": 999}],
            }
        },
    )
    # 5. A Bandwidth for a node that does not exist (a user's, no owner).
    nowhere = f"{lab.scope}-nowhere"
    capacity = Usage(LinkBudget(20000, 20000), LinkBudget(1000, 1000))
    lab.kube.create(BANDWIDTHS.path(), new_bandwidth_object(nowhere, capacity))
    lab.nodes.append(nowhere)  # removed with the lab
    assert wait_for(
        "the phantoms released",
        lambda: not (lab.bandwidth(ghosts) or {})["spec"].get("reservations"),
    )
    wait_for("the scribbled status replaced", partial(_true_and_empty, lab, scribbled))

    def pin(prefix: str, count: int, node: str, egress: str = "100M") -> None:
        names = [f"{prefix}-{i:02d}" for i in range(count)]
        lab.create_pods(names, egress=egress, node_selector={"kubernetes.io/hostname": node})

    pin("bare", 12, bare)  # 10 fit
    pin("huge", 5, huge, egress="1T")  # a terabit each: fits 10^9 Mbps
    pin("ghosts", 10, ghosts)  # fits only once the phantoms are gone
    pin("scribbled", 6, scribbled)
    wait_for("31 pods bound", lambda: len(lab.bound()) == 31, timeout=60)

    # 6. An object named after no node whose spec.node names a real one, with room to spare
    # and, by a few edits, the same generation as that node's own object: it must not be
    # taken for the node's ledger, neither to decide nor as the base of the next write.
    held = set(parse_bandwidth(lab.bandwidth(scribbled) or {}).reservations)
    alias = f"{lab.scope}-alias"
    body = new_bandwidth_object(alias, maximum)
    body["spec"]["node"] = scribbled
    lab.kube.create(BANDWIDTHS.path(), body)
    lab.nodes.append(alias)
    target = parse_bandwidth(lab.bandwidth(scribbled) or {}).generation
    for step in range(target - 1):
        lab.kube.patch(
            BANDWIDTHS.path(name=alias),
            {"spec": {"capacity": {"local": {"ulMbps": SCHEMA_MAX - 1 - step % 2}}}},
        )
    assert parse_bandwidth(lab.bandwidth(alias) or {}).generation == target
    time.sleep(1.0)  # the scheduler has seen it
    pin("more", 8, scribbled)  # 4 fit beside the 6
    wait_for("35 pods bound", lambda: len(lab.bound()) >= 35, timeout=30)
    time.sleep(2.0)  # and no more
    result = lab.settled_audit()
    result.row(
        "Bandwidth objects edited by hand: no node or reservations, 10^9 Mbps, phantom "
        "reservations, made-up status, no node, spec.node naming another node"
    )

    result.assert_clean()
    assert result.bound == Counter({bare: 10, huge: 5, ghosts: 10, scribbled: 10})
    assert result.pending == 2 + 4
    assert held <= set(parse_bandwidth(lab.bandwidth(scribbled) or {}).reservations)
    for odd in (alias, nowhere):
        assert not (lab.bandwidth(odd) or {})["spec"].get("reservations"), odd
    released = Counter(e["reason"] for e in accounting.named("reservation_released"))
    assert released == Counter({"PodDeleted": 2}), released
    warned = {e["problem"] for e in scheduler.named("bandwidth_object_invalid")}
    print(f"scheduler warnings: {warned}")
    for daemon in (scheduler, accounting):
        assert daemon.alive(), daemon.tail()
        assert not daemon.tracebacks(), daemon.tail()
