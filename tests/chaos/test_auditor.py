"""The auditor's self-test: violations planted by hand on a real apiserver are each found,
named and printed, and an honest pod beside them is not. A green soak means something only if
this passes.

No daemon runs here: the test writes the books itself (Bandwidth objects, bindings through
``pods/binding``), as a buggy scheduler or controller would have left them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from kubeio.resources import BANDWIDTHS, PODS
from tests.chaos.auditor import Auditor, read_snapshot
from tests.chaos.books import (
    MISSING_BANDWIDTH,
    OVER_CAPACITY,
    PENDING_FITS,
    SHORT_RESERVATION,
    STALE_RESERVATION,
    UNRESERVED,
    Checker,
    Tolerances,
)
from tests.chaos.timeline import FaultTimeline
from tests.faults.support import Lab, wait_for

pytestmark = [pytest.mark.controlplane]

JSON = dict[str, Any]


def _entry(name: str, uid: str, mbps: int, namespace: str) -> JSON:
    return {
        "podName": name,
        "podNamespace": namespace,
        "podUID": uid,
        "linkLocal": False,
        "bandwidth": {"ulMbps": mbps, "dlMbps": 0},
    }


def _bandwidth(lab: Lab, node: str, network: int, entries: list[JSON]) -> JSON:
    return lab.kube.create(
        BANDWIDTHS.path(),
        {
            "apiVersion": "networking.vaclab.org/v1",
            "kind": "Bandwidth",
            "metadata": {"name": node},
            "spec": {
                "node": node,
                "capacity": {
                    "network": {"ulMbps": network, "dlMbps": network},
                    "local": {"ulMbps": 3000, "dlMbps": 3000},
                },
                "reservations": entries,
            },
        },
    )


def _bound(lab: Lab, name: str, node: str, egress: str) -> JSON:
    pod = lab.create_pod(name, egress=egress)
    lab.kube.create(
        PODS.path(namespace=lab.namespace, name=name, subresource="binding"),
        {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        },
    )
    return pod


def _auditor(lab: Lab, tolerances: Tolerances, printed: list[str]) -> Auditor:
    timeline = FaultTimeline(recovery=0.0)
    return Auditor(
        lab.kube,
        namespace=lab.namespace,
        node_selector=lab.selector,
        prefix=f"{lab.scope}-",
        checker=Checker(lab.scheduler_name, tolerances, timeline.calm_seconds),
        timeline=timeline,
        seed=42,
        started=time.monotonic(),
        interval=0.2,
        out=printed.append,
    )


def test_the_auditor_finds_every_planted_violation_and_nothing_else(lab: Lab) -> None:
    full, over, bare = lab.make_nodes(3)
    ns = lab.namespace
    honest = _bound(lab, "honest", full, "100M")
    unreserved = _bound(lab, "unreserved", full, "250")
    short = _bound(lab, "short", full, "400M")
    big = [_bound(lab, f"big-{i}", over, "600M") for i in range(2)]
    on_bare = _bound(lab, "on-bare", bare, "10M")
    ghost = str(uuid.uuid4())
    _bandwidth(
        lab,
        full,
        1000,
        [
            _entry("honest", honest["metadata"]["uid"], 100, ns),
            _entry("short", short["metadata"]["uid"], 100, ns),
            _entry("ghost", ghost, 100, ns),
        ],
    )
    _bandwidth(
        lab, over, 1000, [_entry(p["metadata"]["name"], p["metadata"]["uid"], 600, ns) for p in big]
    )
    lab.create_pod("waiting", egress="50M")  # 150 Mbps are free on `full`

    printed: list[str] = []
    zero = Tolerances(stale_seconds=0, unbound_grace_seconds=0, missing_bandwidth_seconds=0)
    auditor = _auditor(lab, zero, printed)
    expected = {
        f"unreserved:{unreserved['metadata']['uid']}": UNRESERVED,
        f"short:{short['metadata']['uid']}": SHORT_RESERVATION,
        f"stale:{full}:{ghost}": STALE_RESERVATION,
        f"missing:{bare}": MISSING_BANDWIDTH,
    }
    auditor.start()
    try:
        wait_for(
            "every planted violation",
            lambda: set(expected) <= set(auditor.violations),
            timeout=30,
        )
        time.sleep(1.0)  # a few more audits: nothing else may turn up
    finally:
        auditor.stop()

    found = {key: v.kind for key, v in auditor.violations.items()}
    over_keys = [key for key, kind in found.items() if kind == OVER_CAPACITY]
    assert len(over_keys) == 1 and over_keys[0].startswith(f"over:{over}:"), found
    assert {k: v for k, v in found.items() if v != OVER_CAPACITY} == expected
    assert not any(honest["metadata"]["uid"] in key for key in found)
    assert "network-ul" in auditor.violations[over_keys[0]].message
    text = "\n".join(printed)
    assert "CHAOS VIOLATION unreserved" in text and "seed=42" in text
    assert f"pod {ns}/unreserved is bound to {full} with no reservation there" in text
    assert f"node {bare} has no Bandwidth object" in text and "on-bare" in text
    assert on_bare["metadata"]["uid"] not in found

    snapshot = read_snapshot(lab.kube, ns, lab.selector, f"{lab.scope}-")
    quiet = auditor.checker.outstanding(snapshot, auditor.edits())
    waiting = [f for f in quiet if f.kind == PENDING_FITS]
    assert [f.message.split(" is pending")[0] for f in waiting] == [f"pod {ns}/waiting"]
    assert f"although {full} has room" in waiting[0].message


def test_a_node_the_chaos_shrank_is_exempt_until_it_admits_a_pod(lab: Lab) -> None:
    (node,) = lab.make_nodes(1)
    ns = lab.namespace
    held = [_bound(lab, "a", node, "600M"), _bound(lab, "b", node, "250")]
    _bandwidth(
        lab,
        node,
        1000,
        [
            _entry(p["metadata"]["name"], p["metadata"]["uid"], m, ns)
            for p, m in zip(held, (600, 250), strict=True)
        ],
    )
    printed: list[str] = []
    auditor = _auditor(lab, Tolerances(), printed)
    shrunk = lab.kube.patch(
        BANDWIDTHS.path(name=node), {"spec": {"capacity": {"network": {"ulMbps": 500}}}}
    )
    auditor.record_edit(node, "#1 capacity_edit", [shrunk["metadata"]["resourceVersion"]], shrunk)
    snapshot = read_snapshot(lab.kube, ns, lab.selector, f"{lab.scope}-")
    assert auditor.checker.check(snapshot, auditor.edits()) == []
    assert [f.kind for f in auditor.checker.check(snapshot, {})] == [OVER_CAPACITY]

    late = _bound(lab, "late", node, "10M")
    entries = shrunk["spec"]["reservations"] + [_entry("late", late["metadata"]["uid"], 10, ns)]
    lab.kube.patch(BANDWIDTHS.path(name=node), {"spec": {"reservations": entries}})
    snapshot = read_snapshot(lab.kube, ns, lab.selector, f"{lab.scope}-")
    (found,) = auditor.checker.check(snapshot, auditor.edits())
    assert found.kind == OVER_CAPACITY and "since #1 capacity_edit" in found.message
    assert [line for line in found.objects if line.startswith("NEW ")] == [
        line for line in found.objects if f"{ns}/late" in line
    ]


def test_the_three_lists_of_a_snapshot_are_one_revision(lab: Lab) -> None:
    (node,) = lab.make_nodes(1)
    _bandwidth(lab, node, 1000, [])
    snapshot = read_snapshot(lab.kube, lab.namespace, lab.selector, f"{lab.scope}-")
    assert set(snapshot.nodes) == {node} and set(snapshot.bandwidths) == {node}
    # Listed at that revision again later, after a change, the old state comes back.
    lab.kube.delete(BANDWIDTHS.path(name=node))
    items, _ = lab.kube.list(
        BANDWIDTHS.path(),
        {"resourceVersion": snapshot.resource_version, "resourceVersionMatch": "Exact"},
    )
    assert node in {item["metadata"]["name"] for item in items}


def test_an_edit_is_judged_at_its_own_revision_not_the_objects(lab: Lab) -> None:
    """A node's resourceVersion is when it last changed (simulated nodes: when created); what
    is charged there at a delete must be read at the delete's revision."""
    (node,) = lab.make_nodes(1)
    node_version = lab.kube.get(f"/api/v1/nodes/{node}")["metadata"]["resourceVersion"]
    ghost = str(uuid.uuid4())
    _bandwidth(lab, node, 1000, [_entry("ghost", ghost, 600, lab.namespace)])
    auditor = _auditor(lab, Tolerances(), [])
    now = auditor.current_revision()
    assert int(now) > int(node_version)
    assert ghost in auditor.record_edit(node, "#1 node_delete", [now]).charged
    assert ghost not in auditor.record_edit(node, "#1 node_delete", [node_version]).charged
