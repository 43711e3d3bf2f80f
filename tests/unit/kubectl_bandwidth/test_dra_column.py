"""``kubectl bandwidth`` with DRA sharing reported in the Bandwidth status: what claims hold is
charged (as the scheduler charges it), shown in its own column, and not charged twice."""

from __future__ import annotations

from bandwidth.budget import LinkBudget, Usage
from bandwidth.dra import ClaimHold, DraHolding, holding_status
from kubectl_bandwidth import render
from kubectl_bandwidth.headroom import node_headroom

from .builders import bandwidth, node, pod, reservation, snapshot


def dra_status(*pods: str) -> dict[str, object]:
    link = LinkBudget(600, 100)
    held = DraHolding.of(
        [
            ClaimHold(
                "dra", "web-0-bandwidth", "c1", Usage(local=link, network=link), frozenset(pods)
            )
        ]
    )
    return {"state": "Ready", **holding_status(held)}


def test_the_dra_column_appears_when_the_accounting_controller_reports_claims() -> None:
    nodes = [node("n1"), node("n2")]
    ledgers = [
        bandwidth("n1", reservations=[reservation("r1", 200, 200)], status=dra_status("uid-dra-0")),
        bandwidth("n2", status={"state": "Ready"}),
    ]
    # The DRA pod also carries shaping annotations: its claim already charges it.
    pods = [
        pod("dra-0", node_name="n1", egress="600M", ingress="100M", scheduler="default-scheduler")
    ]
    rows = node_headroom(snapshot(nodes, ledgers, pods))
    assert rows[0].dra == Usage(local=LinkBudget(600, 100), network=LinkBudget(600, 100))
    assert rows[0].charged.network == LinkBudget(800, 300)
    assert rows[0].observed == 0
    assert rows[1].dra is None
    lines = render.render_status(rows).splitlines()
    assert lines[0].endswith("PODS   DRA UL/DL (Mbps)")
    assert lines[1].endswith("net 600/100 local 600/100")
    assert "800/1000 (200 free)" in lines[1]
    assert lines[2].endswith("-")
    document = render.status_document(rows)
    assert document["nodes"][0]["heldByDraClaims"]["network"] == {"ulMbps": 600, "dlMbps": 100}
    assert document["nodes"][1]["heldByDraClaims"] is None


def test_no_dra_column_without_dra_sharing() -> None:
    rows = node_headroom(snapshot([node("n1")], [bandwidth("n1")], []))
    assert "DRA" not in render.render_status(rows)
