"""The auditor's rules on hand-made snapshots: each finds what it promises to, and only that."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.chaos.books import (
    DEPOSED_WRITE,
    MISSING_BANDWIDTH,
    OVER_CAPACITY,
    PENDING_FITS,
    SHORT_RESERVATION,
    STALE_RESERVATION,
    UNRESERVED,
    ChaosEdit,
    Checker,
    Snapshot,
    Tolerances,
    read_ledger,
)
from tests.chaos.leases import Incarnation, Tenure, Write, deposed_writes, monotonic_of
from tests.chaos.timeline import FaultTimeline
from tests.chaos.workload import EGRESS, INGRESS, LINK_LOCAL, POD_SETS, SIZES, demand_of

SCHEDULER = "vaclab-chaos"
LABELS = {"scope": "chaos"}
JSON = dict[str, Any]


def pod(name: str, uid: str, node: str = "", egress: str = "100M", **extra: Any) -> JSON:
    notes = {EGRESS: egress, **extra.pop("annotations", {})}
    body: JSON = {
        "metadata": {"name": name, "namespace": "chaos", "uid": uid, "annotations": notes},
        "spec": {"schedulerName": SCHEDULER, "nodeSelector": dict(LABELS)},
        "status": {"phase": extra.pop("phase", "Pending")},
    }
    if node:
        body["spec"]["nodeName"] = node
    if extra.pop("terminating", False):
        body["metadata"]["deletionTimestamp"] = "2026-11-26T04:00:00Z"
    return body


def bandwidth(node: str, network: int = 1000, *entries: tuple[str, str, int]) -> JSON:
    return {
        "metadata": {"name": node},
        "spec": {
            "node": node,
            "capacity": {
                "network": {"ulMbps": network, "dlMbps": network},
                "local": {"ulMbps": 3000, "dlMbps": 3000},
            },
            "reservations": [
                {
                    "podName": name,
                    "podNamespace": "chaos",
                    "podUID": uid,
                    "linkLocal": False,
                    "bandwidth": {"ulMbps": mbps, "dlMbps": 0},
                }
                for name, uid, mbps in entries
            ],
        },
    }


def snapshot(
    at: float, pods: list[JSON], *bandwidths: JSON, nodes: list[str] | None = None
) -> Snapshot:
    names = nodes if nodes is not None else [b["metadata"]["name"] for b in bandwidths]
    return Snapshot(
        at=at,
        resource_version="1",
        pods=tuple(pods),
        nodes={n: dict(LABELS) for n in names},
        bandwidths={b["metadata"]["name"]: b for b in bandwidths},
    )


def checker(calm: float | None = None, **tolerances: float) -> Checker:
    def clock(since: float, until: float) -> float:
        return until - since if calm is None else calm

    return Checker(SCHEDULER, Tolerances(**tolerances), clock)


def kinds(findings: list[Any]) -> list[str]:
    return sorted(f.kind for f in findings)


def test_a_consistent_cluster_has_no_finding() -> None:
    pods = [pod("web-0", "u0", "n1"), pod("web-1", "u1", "n1", terminating=True), pod("w-2", "u2")]
    snap = snapshot(0, pods, bandwidth("n1", 200, ("web-0", "u0", 100), ("web-1", "u1", 100)))
    assert checker().check(snap, {}) == []
    assert checker().outstanding(snap, {}) == []


def test_a_pod_bound_without_its_reservation_is_unreserved() -> None:
    snap = snapshot(0, [pod("web-0", "u0", "n1")], bandwidth("n1"))
    (found,) = checker().check(snap, {})
    assert found.kind == UNRESERVED and "web-0" in found.message and "n1" in found.message


def test_a_reservation_of_the_old_uid_does_not_cover_a_recreated_pod() -> None:
    snap = snapshot(0, [pod("web-0", "new", "n1")], bandwidth("n1", 1000, ("web-0", "old", 100)))
    found = checker(calm=0).check(snap, {})
    assert kinds(found) == [UNRESERVED]
    stale = checker().outstanding(snap, {})
    assert kinds(stale) == [STALE_RESERVATION, UNRESERVED]
    assert "now has uid=new" in next(f for f in stale if f.kind == STALE_RESERVATION).message


def test_an_entry_smaller_than_the_request_is_short() -> None:
    snap = snapshot(
        0, [pod("web-0", "u0", "n1", egress="400M")], bandwidth("n1", 1000, ("web-0", "u0", 100))
    )
    assert kinds(checker().check(snap, {})) == [SHORT_RESERVATION]


def test_terminating_pods_still_count_against_capacity() -> None:
    pods = [
        pod("a", "ua", "n1", egress="600M", terminating=True),
        pod("b", "ub", "n1", egress="600M"),
    ]
    snap = snapshot(0, pods, bandwidth("n1", 1000, ("a", "ua", 600), ("b", "ub", 600)))
    (found,) = checker().check(snap, {})
    assert found.kind == OVER_CAPACITY and "network-ul" in found.message
    finished = [
        pod("a", "ua", "n1", egress="600M", phase="Succeeded"),
        pod("b", "ub", "n1", egress="600M"),
    ]
    snap = snapshot(0, finished, bandwidth("n1", 1000, ("b", "ub", 600)))
    assert checker().check(snap, {}) == []


def test_a_link_local_pod_spares_the_network_axes() -> None:
    notes = {LINK_LOCAL: "true", INGRESS: "600M"}
    pods = [pod(f"p{i}", f"u{i}", "n1", egress="600M", annotations=notes) for i in range(2)]
    ledger = bandwidth("n1", 1000)
    ledger["spec"]["reservations"] = [
        {
            "podUID": f"u{i}",
            "podName": f"p{i}",
            "podNamespace": "chaos",
            "linkLocal": True,
            "bandwidth": {"ulMbps": 600, "dlMbps": 600},
        }
        for i in range(2)
    ]
    assert checker().check(snapshot(0, pods, ledger), {}) == []
    for entry in ledger["spec"]["reservations"]:
        entry["linkLocal"] = False  # both charged on the NIC as well: 1200 of 1000
    assert kinds(checker().check(snapshot(0, pods, ledger), {})) == [OVER_CAPACITY]


def test_a_node_the_chaos_shrank_may_stay_over_with_its_pods_but_admit_nobody() -> None:
    before = [pod("a", "ua", "n1", egress="600M"), pod("b", "ub", "n1", egress="300M")]
    shrunk = bandwidth("n1", 500, ("a", "ua", 600), ("b", "ub", 300))
    edit = {"n1": ChaosEdit("n1", "#3 capacity_edit", frozenset({"ua", "ub"}))}
    assert checker().check(snapshot(0, before, shrunk), {}) != []
    assert checker().check(snapshot(0, before, shrunk), edit) == []
    after = [*before, pod("c", "uc", "n1", egress="10M")]
    admitted = bandwidth("n1", 500, ("a", "ua", 600), ("b", "ub", 300), ("c", "uc", 10))
    (found,) = checker().check(snapshot(0, after, admitted), edit)
    assert found.kind == OVER_CAPACITY and "since #3 capacity_edit" in found.message
    assert any(line.startswith("NEW pod chaos/c") for line in found.objects)
    # While the edit is being written and recorded, the node is not judged; once recorded,
    # the admitted pod is found again.
    settling = {"n1": ChaosEdit("n1", "#3 capacity_edit", frozenset(), settling=True)}
    assert checker().check(snapshot(0, after, admitted), settling) == []


def test_stale_reservations_are_allowed_their_calm_tolerance() -> None:
    snap0 = snapshot(0, [], bandwidth("n1", 1000, ("gone", "ug", 100)))
    judge = checker(stale_seconds=15)
    assert judge.check(snap0, {}) == []
    assert judge.check(snapshot(10, [], *snap0.bandwidths.values()), {}) == []
    (found,) = judge.check(snapshot(16, [], *snap0.bandwidths.values()), {})
    assert found.kind == STALE_RESERVATION and "pod gone" in found.message
    # Busy time does not count: with no calm second, nothing is late.
    busy = checker(calm=0, stale_seconds=15)
    assert (
        busy.check(snap0, {}) == []
        and busy.check(snapshot(100, [], *snap0.bandwidths.values()), {}) == []
    )


def test_an_unbound_pods_reservation_gets_the_unbound_grace_on_top() -> None:
    pods = [pod("web-0", "u0")]
    ledger = bandwidth("n1", 1000, ("web-0", "u0", 100))
    judge = checker(stale_seconds=5, unbound_grace_seconds=10)
    assert judge.check(snapshot(0, pods, ledger), {}) == []
    assert judge.check(snapshot(14, pods, ledger), {}) == []
    assert kinds(judge.check(snapshot(16, pods, ledger), {})) == [STALE_RESERVATION]


def test_a_condition_that_clears_starts_its_clock_again() -> None:
    judge = checker(stale_seconds=5)
    stale = bandwidth("n1", 1000, ("gone", "ug", 100))
    judge.check(snapshot(0, [], stale), {})
    judge.check(snapshot(3, [], bandwidth("n1")), {})
    assert judge.check(snapshot(6, [], stale), {}) == []


def test_a_missing_bandwidth_and_an_orphaned_one() -> None:
    snap = snapshot(
        0, [pod("web-0", "u0", "n2")], bandwidth("gone-node", 1000, ("x", "ux", 5)), nodes=["n2"]
    )
    found = checker().outstanding(snap, {})
    assert kinds(found) == [MISSING_BANDWIDTH, STALE_RESERVATION]
    missing = next(f for f in found if f.kind == MISSING_BANDWIDTH)
    assert any("web-0" in line for line in missing.objects)
    assert checker().check(snap, {}) == []  # both still within their tolerance


def test_a_pending_pod_that_fits_is_found_only_when_quiet() -> None:
    pods = [pod("web-0", "u0", egress="400M"), pod("big", "ub", egress="1Gi")]
    snap = snapshot(0, pods, bandwidth("n1", 1000, ("x", "ux", 500)), nodes=["n1"])
    assert checker().check(snap, {}) == []  # the pending check waits for quiet
    found = [f for f in checker().outstanding(snap, {}) if f.kind == PENDING_FITS]
    assert [f.key for f in found] == ["pending:u0"]  # 1074 Mbps never fits 500 free
    pinned = pod("web-0", "u0", egress="400M")
    pinned["spec"]["nodeSelector"]["zone"] = "elsewhere"
    snap = snapshot(0, [pinned], bandwidth("n1"))
    assert checker().outstanding(snap, {}) == []


def test_the_ledger_is_read_without_the_code_under_test() -> None:
    ledger = read_ledger(bandwidth("n1", 1000, ("a", "ua", 100), ("a-again", "ua", 900)))
    assert ledger.capacity == (1000, 1000, 3000, 3000)
    assert list(ledger.entries) == ["ua"] and ledger.entries["ua"].demand.ul_mbps == 100
    broken = bandwidth("n1")
    broken["spec"]["capacity"]["local"] = {"ulMbps": "lots"}
    assert read_ledger(broken).capacity is None


def test_every_size_the_load_uses_is_in_the_oracle() -> None:
    for pod_set in POD_SETS:
        demand = demand_of(pod_set.annotations())
        assert not demand.is_zero()
    assert SIZES["1Gi"] == 1074 and SIZES["200000k"] == 200 and SIZES["250"] == 250


def test_calm_time_leaves_out_faults_and_their_recovery() -> None:
    timeline = FaultTimeline(recovery=5)
    window = timeline.begin("#1 partition", 10)
    assert timeline.calm_seconds(0, 20) == 10  # still in progress from 10 on
    timeline.end(window, 12)
    assert timeline.calm_seconds(0, 30) == 30 - 7
    timeline.begin("#2 apiserver_kill", 14)
    assert timeline.in_progress(15) == ["#2 apiserver_kill", "#1 partition (recovering)"]


def test_a_replica_writing_after_another_took_its_lease_is_deposed() -> None:
    tenures = [Tenure("chaos-scheduler", "a-id", 0.0), Tenure("chaos-scheduler", "b-id", 20.0)]
    replicas = {
        "scheduler-a": [Incarnation("scheduler-a", "chaos-scheduler", "a-id", 0.0)],
        "scheduler-b": [Incarnation("scheduler-b", "chaos-scheduler", "b-id", 0.0)],
    }
    bind = "/api/v1/namespaces/chaos/pods/web-0/binding"
    writes = [
        Write("scheduler-a", 5.0, "POST", bind),
        Write("scheduler-b", 5.0, "PUT", "/apis/coordination.k8s.io/v1/namespaces/chaos/leases/x"),
        Write("scheduler-a", 21.0, "POST", "/apis/coordination.k8s.io/v1/namespaces/chaos/leases"),
        Write("scheduler-b", 21.0, "POST", bind),
        Write("scheduler-a", 20.2, "PATCH", "/apis/networking.vaclab.org/v1/bandwidths/n1"),
    ]
    assert deposed_writes(tenures, writes, replicas) == []  # 0.2 s: within the margin
    late = [
        *writes,
        Write("scheduler-a", 25.0, "PATCH", "/apis/networking.vaclab.org/v1/bandwidths/n1"),
    ]
    (found,) = deposed_writes(tenures, late, replicas)
    assert found.kind == DEPOSED_WRITE and found.key == "deposed:scheduler-a"
    assert "b-id held the Lease" in found.message
    # A new process of the same replica is judged by its own identity.
    replicas["scheduler-a"].append(Incarnation("scheduler-a-2", "chaos-scheduler", "c-id", 24.0))
    (found,) = deposed_writes(tenures, late, replicas)
    assert found.key == "deposed:scheduler-a-2"


def test_lease_times_map_onto_the_monotonic_clock() -> None:
    stamp = datetime(2026, 11, 26, 4, 16, 26, 500000, tzinfo=UTC).timestamp()
    at = monotonic_of("2026-11-26T04:16:26.5Z", now_wall=stamp + 3.5, now_monotonic=100.0)
    assert at is not None and abs(at - 96.5) < 1e-6
    assert monotonic_of("yesterday", 0.0, 0.0) is None
