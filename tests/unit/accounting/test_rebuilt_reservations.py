"""A Bandwidth created for a node that already runs pods starts with their reservations."""

from __future__ import annotations

from accounting.books import rebuilt_reservations
from bandwidth.model import MAX_RESERVATIONS, new_bandwidth_object, parse_bandwidth
from bandwidth.request import BandwidthRequest

from .builders import CAPACITY, EGRESS, INGRESS, NOW, books, ledger, pod


def test_every_live_pod_bound_to_the_node_that_asks_for_bandwidth_gets_an_entry() -> None:
    pods = [
        pod("asks", annotations={EGRESS: "100M", INGRESS: "1G"}),
        pod("local", annotations={EGRESS: "50", "bandwidth.vaclab.org/link-local": "true"}),
        pod("quiet"),  # no annotations: holds nothing
        pod("zero", annotations={EGRESS: "0"}),
        pod("bad", annotations={EGRESS: "fast"}),  # charged nothing, reported by the books
        pod("done", phase="Succeeded", annotations={EGRESS: "100M"}),
        pod("elsewhere", node="n2", annotations={EGRESS: "100M"}),
        pod("pending", node="", annotations={EGRESS: "100M"}),
    ]
    rebuilt = rebuilt_reservations("n1", pods, now=NOW, limit=MAX_RESERVATIONS)
    assert {(r.pod_uid, r.request) for r in rebuilt} == {
        ("asks", BandwidthRequest(100, 1000)),
        ("local", BandwidthRequest(50, 0, link_local=True)),
    }
    assert all(r.reserved_at == NOW and r.scheduler == "" for r in rebuilt)


def test_the_books_of_the_new_object_charge_the_same_as_before_as_scheduler_entries() -> None:
    pods = [pod("a", annotations={EGRESS: "300M"}), pod("b", annotations={INGRESS: "200M"})]
    observed = books(ledger(), pods)  # an empty ledger: both are charged as Observed
    rebuilt = rebuilt_reservations("n1", pods, now=NOW, limit=MAX_RESERVATIONS)
    created = parse_bandwidth(new_bandwidth_object("n1", CAPACITY, reservations=rebuilt))
    restored = books(ledger(*created.reservations.values()), pods)
    assert restored.used == observed.used
    assert {c.source for c in observed.charges} == {"Observed"}
    assert {c.source for c in restored.charges} == {"Scheduler"}
    assert not restored.releases


def test_no_more_entries_than_the_object_can_hold() -> None:
    pods = [pod(f"p{i:02d}", annotations={EGRESS: "1M"}) for i in range(12)]
    rebuilt = rebuilt_reservations("n1", pods, now=NOW, limit=10)
    assert [r.pod_name for r in rebuilt] == [f"pod-p{i:02d}" for i in range(10)]
