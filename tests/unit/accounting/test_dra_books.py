"""The books with DRA sharing on: what claims hold is used on the node, shown apart in the status,
and the pods the claims hold bandwidth for are not charged again for their annotations."""

from __future__ import annotations

from accounting.books import SOURCE_OBSERVED, Books, keep_books
from accounting.status import desired_status
from bandwidth.budget import LinkBudget, Usage
from bandwidth.dra import NO_HOLDING, ClaimHold, DraHolding

from .builders import EGRESS, GRACE, INGRESS, NOW, books, ledger, pod, reservation


def held(*pods: str, up: int = 600, down: int = 100) -> DraHolding:
    network = LinkBudget(up, down)
    return DraHolding.of(
        [
            ClaimHold(
                "dra",
                "web-0-bandwidth",
                "claim-uid",
                Usage(local=network, network=network),
                frozenset(pods),
            )
        ]
    )


def dra_books(holding: DraHolding | None, *extra: str) -> Books:
    pods = [
        pod("r"),
        pod("dra-pod", annotations={EGRESS: "600M", INGRESS: "100M"}),
        *(pod(uid, annotations={EGRESS: "50M"}) for uid in extra),
    ]
    return keep_books(
        ledger(reservation("r", 300, 300)),
        pods,
        {p.uid: p for p in pods},
        unbound_grace=GRACE,
        now=NOW,
        replicaset_owner=lambda namespace, name: None,
        dra=holding,
    )


def test_what_claims_hold_is_used_and_can_oversubscribe_the_node() -> None:
    result = dra_books(held("dra-pod"), "other")
    assert result.used.network == LinkBudget(300 + 600 + 50, 300 + 100)
    # The claim's pod is charged through its claim, not again as observed.
    observed = [c.pod_uid for c in result.charges if c.source == SOURCE_OBSERVED]
    assert observed == ["other"]
    over = dra_books(held("dra-pod", up=800), "other")
    assert over.oversubscribed


def test_without_sharing_the_pod_is_observed_and_nothing_dra_is_written() -> None:
    result = dra_books(None)
    observed = [c.pod_uid for c in result.charges if c.source == SOURCE_OBSERVED]
    assert observed == ["dra-pod"]
    status = desired_status(result, node_exists=True, generation=1, previous=None, now=NOW)
    assert "draUsed" not in status and "draClaims" not in status


def test_the_status_shows_what_claims_hold_apart_and_in_used() -> None:
    result = dra_books(held("dra-pod"))
    status = desired_status(result, node_exists=True, generation=1, previous=None, now=NOW)
    assert status["draUsed"]["network"] == {"ulMbps": 600, "dlMbps": 100}
    assert status["used"]["network"] == {"ulMbps": 900, "dlMbps": 400}
    assert status["draClaims"] == [
        {
            "namespace": "dra",
            "name": "web-0-bandwidth",
            "uid": "claim-uid",
            "used": {
                "local": {"ulMbps": 600, "dlMbps": 100},
                "network": {"ulMbps": 600, "dlMbps": 100},
            },
            "podUIDs": ["dra-pod"],
        }
    ]
    empty = desired_status(
        dra_books(NO_HOLDING), node_exists=True, generation=1, previous=None, now=NOW
    )
    assert empty["draClaims"] == [] and empty["draUsed"]["network"] == {"ulMbps": 0, "dlMbps": 0}


def test_the_usual_books_are_unchanged_by_the_new_field() -> None:
    plain = books(ledger(reservation("r", 100, 50)), [pod("r")])
    assert plain.dra is None
    assert plain.used.network == LinkBudget(100, 50)
