"""keep_books: which reservations are stale, who is charged, and what is left."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounting.books import SOURCE_OBSERVED, SOURCE_SCHEDULER, Books, ReleaseReason, keep_books
from bandwidth.budget import AXES, LinkBudget, Usage
from bandwidth.model import Reservation, capacity_json, parse_bandwidth, reservations_json

from .builders import CAPACITY, EGRESS, GRACE, INGRESS, NOW, books, ledger, pod, reservation


def reasons(result: Books) -> dict[str, ReleaseReason]:
    return {r.reservation.pod_uid: r.reason for r in result.releases}


def test_a_running_pod_keeps_its_reservation_and_is_charged() -> None:
    result = books(ledger(reservation("a", 300, 200)), [pod("a")])
    assert result.releases == ()
    assert [(c.pod_uid, c.source, c.ul_mbps, c.dl_mbps) for c in result.charges] == [
        ("a", SOURCE_SCHEDULER, 300, 200)
    ]
    assert result.used == Usage(local=LinkBudget(300, 200), network=LinkBudget(300, 200))
    assert result.remaining == Usage(local=LinkBudget(19700, 19800), network=LinkBudget(700, 800))


def test_deleted_finished_and_misplaced_pods_release_their_reservations() -> None:
    bandwidth = ledger(
        reservation("gone"), reservation("done"), reservation("crashed"), reservation("moved")
    )
    pods = [pod("done", phase="Succeeded"), pod("crashed", phase="Failed"), pod("moved", "n2")]
    result = books(bandwidth, pods)
    assert reasons(result) == {
        "gone": ReleaseReason.POD_DELETED,
        "done": ReleaseReason.POD_SUCCEEDED,
        "crashed": ReleaseReason.POD_FAILED,
        "moved": ReleaseReason.BOUND_ELSEWHERE,
    }
    assert result.charges == ()
    assert result.used == Usage()
    moved = next(r for r in result.releases if r.reservation.pod_uid == "moved")
    assert "n2" in moved.detail and "lab/pod-moved" in moved.detail


def test_a_pod_recreated_under_the_same_name_does_not_inherit_the_reservation() -> None:
    bandwidth = ledger(reservation("old-uid", name="web-0"))
    result = books(bandwidth, [pod("new-uid", name="web-0")])
    # The new pod has no reservation here and no annotations: nothing is charged.
    assert reasons(result) == {"old-uid": ReleaseReason.POD_DELETED}


def test_an_unbound_reservation_lasts_exactly_the_grace_period() -> None:
    bandwidth = ledger(reservation("wait", age=59.0))
    unbound = pod("wait", node="", phase="Pending")
    within = books(bandwidth, [unbound])
    assert within.releases == ()
    assert [c.pod_uid for c in within.charges] == ["wait"]  # held while it waits
    assert within.review_at == NOW + timedelta(seconds=1)
    after = books(bandwidth, [unbound], now=NOW + timedelta(seconds=1))
    assert reasons(after) == {"wait": ReleaseReason.NEVER_BOUND}
    assert after.releases[0].needs_fresh_pod
    assert after.review_at is None


def test_a_pod_bound_before_the_grace_ends_keeps_its_reservation_for_good() -> None:
    bandwidth = ledger(reservation("late", age=600.0))
    result = books(bandwidth, [pod("late")])
    assert result.releases == ()
    assert result.review_at is None


def test_a_reservation_without_reserved_at_counts_from_first_seen() -> None:
    dated = reservation("old")
    undated = Reservation(dated.pod_uid, dated.pod_name, dated.pod_namespace, dated.request)
    bandwidth = ledger(undated)
    unbound = pod("old", node="", phase="Pending")

    def run(first_seen_age: float) -> list[str]:
        result = keep_books(
            bandwidth,
            [],
            {"old": unbound},
            unbound_grace=GRACE,
            now=NOW,
            replicaset_owner=lambda ns, name: None,
            first_seen={"old": NOW - timedelta(seconds=first_seen_age)},
        )
        return [r.reservation.pod_uid for r in result.releases]

    assert run(10) == []
    assert run(61) == ["old"]


@pytest.mark.parametrize(
    ("written", "first_seen_age", "released"),
    [
        ("9999-12-31T23:59:59-01:00", 10, False),  # the year 10000 in UTC: no time at all
        ("9999-12-31T23:59:59-01:00", 61, True),
        ("0001-01-01T00:00:00+01:00", 61, True),  # the year 0 in UTC
        ("9999-12-31T23:59:00Z", 10, False),  # representable, but far in the future
        ("9999-12-31T23:59:00Z", 61, True),
        ("0001-01-01T00:00:00Z", 0, True),  # representable and long past
    ],
)
def test_reservations_dated_at_the_edges_of_the_calendar_count_safely(
    written: str, first_seen_age: float, released: bool
) -> None:
    entry = reservation("edge").to_json()
    entry["reservedAt"] = written
    bandwidth = parse_bandwidth(
        {
            "metadata": {"name": "n1", "generation": 2},
            "spec": {"capacity": capacity_json(CAPACITY), "reservations": [entry]},
        }
    )
    result = keep_books(
        bandwidth,
        [],
        {"edge": pod("edge", node="", phase="Pending")},
        unbound_grace=GRACE,
        now=NOW,
        replicaset_owner=lambda ns, name: None,
        first_seen={"edge": NOW - timedelta(seconds=first_seen_age)},
    )
    assert bool(result.releases) is released
    assert released or result.review_at is not None
    reservations_json(bandwidth.reservations.values())  # writable again, whatever was read


def test_only_absence_based_releases_need_a_fresh_look_at_the_pod() -> None:
    result = books(ledger(reservation("gone"), reservation("done")), [pod("done", phase="Failed")])
    fresh = {r.reservation.pod_uid: r.needs_fresh_pod for r in result.releases}
    assert fresh == {"gone": True, "done": False}


def test_pods_placed_by_another_scheduler_are_observed_and_charged() -> None:
    annotated = {EGRESS: "500M", INGRESS: "250"}
    pods = [
        pod("ours"),
        pod("theirs", annotations=annotated),
        pod("plain"),  # no annotations: not ours to count
        pod("finished", phase="Succeeded", annotations=annotated),
        pod("elsewhere", node="n2", annotations=annotated),
    ]
    result = books(ledger(reservation("ours", 100, 100)), pods)
    charged = {c.pod_uid: (c.source, c.ul_mbps, c.dl_mbps) for c in result.charges}
    assert charged == {"ours": (SOURCE_SCHEDULER, 100, 100), "theirs": (SOURCE_OBSERVED, 500, 250)}
    assert result.used.network == LinkBudget(600, 350)


def test_link_local_pods_charge_the_local_datapath_only() -> None:
    pods = [
        pod("ll", annotations={EGRESS: "100", "bandwidth.vaclab.org/link-local": "true"}),
        pod("r"),
    ]
    result = books(ledger(reservation("r", 50, 60, link_local=True)), pods)
    assert result.used == Usage(local=LinkBudget(150, 60), network=LinkBudget())


def test_unparseable_annotations_charge_nothing_and_are_reported() -> None:
    bad = pod("bad", annotations={EGRESS: "lots"})
    result = books(ledger(), [bad])
    assert result.charges == ()
    assert [u.pod.uid for u in result.unhonoured] == ["bad"]
    assert EGRESS in str(result.unhonoured[0].error)


def test_oversubscription_is_named_per_axis_and_remaining_never_negative() -> None:
    capacity = Usage(local=LinkBudget(20000, 20000), network=LinkBudget(1000, 1000))
    pods = [pod("x", annotations={EGRESS: "900"}), pod("y", annotations={EGRESS: "300"})]
    result = books(ledger(capacity=capacity), pods)
    assert [str(axis) for axis in result.oversubscribed] == ["network uplink"]
    assert result.used.network.ul_mbps == 1200
    assert result.remaining.network == LinkBudget(0, 1000)


def test_charges_are_sorted_for_a_stable_status() -> None:
    pods = [pod(uid, annotations={EGRESS: "1"}) for uid in ("c", "a", "b")]
    result = books(ledger(), pods)
    assert [c.pod_uid for c in result.charges] == ["a", "b", "c"]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 5000),
            st.integers(0, 5000),
            st.booleans(),
            st.sampled_from(["Running", "Pending", "Succeeded", "Failed", "missing", "moved"]),
        ),
        max_size=12,
    )
)
def test_used_is_the_sum_of_charges_and_remaining_is_clamped(
    entries: list[tuple[int, int, bool, str]],
) -> None:
    reservations, pods = [], []
    expected = Usage()
    for index, (ul, dl, link_local, state) in enumerate(entries):
        uid = f"u{index}"
        reservations.append(reservation(uid, ul, dl, link_local=link_local))
        if state == "missing":
            continue
        pods.append(pod(uid, node="n2" if state == "moved" else "n1", phase=state))
        if state in ("Running", "Pending"):
            network = LinkBudget() if link_local else LinkBudget(ul, dl)
            expected = expected + Usage(local=LinkBudget(ul, dl), network=network)
    result = books(ledger(*reservations), pods)
    assert result.used == expected
    for axis in AXES:
        assert result.remaining.on(axis) == max(0, result.capacity.on(axis) - expected.on(axis))
    assert len(result.charges) + len(result.releases) == len(entries)
