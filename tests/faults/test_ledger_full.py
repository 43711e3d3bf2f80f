"""A node's ledger outgrows what the apiserver stores.

A Bandwidth object lives in one etcd key, bounded by etcd's ``--max-request-bytes`` (1.5 MiB by
default; ``docs/design.md`` measures 958 reservations with the longest names). Past it the
apiserver answers 500 "etcdserver: request is too large", which the binder used to retry as
transient, batch after batch, for ever; the pods waited without a word.

This control plane's etcd takes 96 KiB, so the limit is met with a few hundred pods of
253-character names. The refusal must be a clear, non-retried error: a ``LedgerFull`` Warning
on the Bandwidth, ``BandwidthLedgerFull`` or "full Bandwidth ledger" on each pod that cannot
go there, no write to that ledger repeated, and the accounting controller's status written
without its per-pod list when that is what does not fit. Pods free to go elsewhere do.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.faults.conftest import PrivateLab
from tests.faults.proxy import FaultProxy
from tests.faults.support import Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

PINNED = 260
LOOSE = 10


def _long(index: int) -> str:
    return (f"p{index:03d}-" + "x" * 253)[:253]


def _warned(lab: Lab, name: str) -> bool:
    return any(
        e["type"] == "Warning"
        and (
            e["reason"] == "BandwidthLedgerFull"
            or (e["reason"] == "FailedScheduling" and "full Bandwidth ledger" in e["message"])
        )
        for e in lab.events("Pod", name)
    )


def test_a_ledger_too_large_to_store_is_a_clear_error_never_a_retry(
    private_lab: PrivateLab,
) -> None:
    cp, lab = private_lab(etcd_args={"max-request-bytes": str(96 * 1024)})
    with FaultProxy(cp.credentials) as proxy:
        accounting = lab.accounting()
        full, spare = lab.make_nodes(
            2, network_mbps=1_000_000, local_mbps=1_000_000, pods=str(PINNED + LOOSE)
        )
        wait_for("the Bandwidths", lambda: len(lab.bandwidths()) == 2)
        scheduler = lab.scheduler(kubeconfig=proxy.kubeconfig(lab.log_dir / "proxy.kubeconfig"))
        scheduler.wait_synced()

        names = [_long(i) for i in range(PINNED)]
        lab.create_pods(names, egress="1M", node_selector={"kubernetes.io/hostname": full})
        [refusal] = wait_for(
            "the ledger refused as too large",
            lambda: scheduler.named("bandwidth_ledger_full")[:1],
            timeout=120,
        )
        held = len((lab.bandwidth(full) or {})["spec"].get("reservations") or [])

        def settled() -> bool:
            bound = lab.bound()
            return len(bound) >= held and all(name in bound or _warned(lab, name) for name in names)

        wait_for("every pinned pod bound or warned", settled, timeout=120, interval=1)
        lab.create_pods([f"loose-{i}" for i in range(LOOSE)], egress="1M")
        wait_for("the loose pods bound", lambda: len(lab.bound()) >= held + LOOSE, timeout=60)
        writes_before = _ledger_writes(proxy, full)
        time.sleep(10)  # a retry loop would show here
        writes_after = _ledger_writes(proxy, full)
        result = lab.settled_audit()
        result.row(f"etcd limit 96 KiB: {PINNED} pods of 253-character names on one node")

        bound = Counter(lab.bound().values())
        print(
            f"ledger refused at {refusal['held']} entries ({refusal['error'][:80]}...); "
            f"{held} held, {bound[full]} bound there, {bound[spare]} elsewhere; "
            f"writes to that ledger in the 10 s after: {writes_after - writes_before}"
        )
        assert bound[full] == held and bound[spare] == LOOSE
        assert writes_after == writes_before
        ledger_events = [e for e in lab.events("Bandwidth", full, "default")]
        assert any(e["reason"] == "LedgerFull" for e in ledger_events), ledger_events
        assert not [e for e in scheduler.named("reserve_failed") if "too large" in str(e)]
        result.assert_clean()
        for daemon in (scheduler, accounting):
            assert daemon.alive(), daemon.tail()
            assert not daemon.tracebacks(), daemon.tail()


def _ledger_writes(proxy: FaultProxy, node: str) -> int:
    return sum(
        1
        for r in proxy.records()
        if r.method == "PATCH" and r.path.split("?")[0].endswith(f"/bandwidths/{node}")
    )
