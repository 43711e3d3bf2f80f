"""A watch expires (410 Gone after etcd compaction): both daemons relist and stay correct.

Both daemons reach the apiserver through the fault proxy. The proxy cuts them off (a
partition); while they cannot see, a bound pod is deleted, a new pod is created, and a third
is created and deleted again. etcd is compacted past everything they saw and kube-apiserver
restarted (its watch cache would otherwise still serve the old window), then the partition
heals: their watches resume from a resourceVersion that no longer exists, get 410 Gone, and
relist. The relist must show the deletion (the accounting controller releases the deleted pod's
reservation), the new pod (the scheduler binds it in the room the deletion freed), and nothing
of the pod that lived only in the gap.
"""

from __future__ import annotations

from collections import Counter
from functools import partial

import pytest

from tests.faults.conftest import PrivateLab
from tests.faults.proxy import FaultProxy
from tests.faults.support import wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]


def test_both_daemons_relist_after_410_and_see_what_changed_in_the_gap(
    private_lab: PrivateLab,
) -> None:
    cp, lab = private_lab()
    with FaultProxy(cp.credentials) as proxy:
        through_proxy = proxy.kubeconfig(lab.log_dir / "proxy.kubeconfig")
        accounting = lab.accounting("--unbound-reservation-grace=5s", kubeconfig=through_proxy)
        [node] = lab.make_nodes(1, network_mbps=1000)
        wait_for("the Bandwidth", lambda: lab.bandwidth(node))
        scheduler = lab.scheduler(kubeconfig=through_proxy)
        scheduler.wait_synced()
        for name in ("before-a", "before-b"):
            lab.create_pod(name, egress="500M")
        wait_for("the node full", lambda: len(lab.bound()) == 2)

        proxy.partition()
        for daemon in (scheduler, accounting):
            wait_for(f"{daemon.name} to lose its watches", partial(daemon.named, "watch_failed"))
        lab.delete_pod("before-a")
        lab.create_pod("across", egress="500M")
        lab.create_pod("ghost", egress="500M")
        lab.delete_pod("ghost")
        compacted = cp.compact_etcd()
        cp.restart_apiserver()
        proxy.heal()
        print(f"etcd compacted at revision {compacted}; apiserver restarted; partition healed")

        for daemon in (scheduler, accounting):
            wait_for(
                f"{daemon.name} to relist its pods after 410",
                partial(daemon.relisted_after_expiry, "pods"),
                timeout=60,
            )
        assert wait_for("the new pod bound", lambda: lab.bound().get("across"), timeout=30) == node
        result = lab.settled_audit()
        result.row("watch expired (410 after compaction and apiserver restart) across a partition")

        result.assert_clean()
        assert result.bound == Counter({node: 2})
        held = {entry["podName"] for entry in (lab.bandwidth(node) or {})["spec"]["reservations"]}
        assert held == {"before-b", "across"}
        released = [e["pod"] for e in accounting.named("reservation_released")]
        assert released == [f"{lab.namespace}/before-a"]
        assert not [e for e in scheduler.events() if "ghost" in str(e.get("pod", ""))]
        for daemon in (scheduler, accounting):
            print(daemon.name, Counter(e["kind"] for e in daemon.named("watch_expired")))
            assert daemon.alive(), daemon.tail()
            assert not daemon.tracebacks(), daemon.tail()
