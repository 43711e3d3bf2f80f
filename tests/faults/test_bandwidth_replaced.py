"""A Bandwidth deleted and made again while a scheduler's view of it lags behind.

Two schedulers share a node's ledger (as two scheduler names, or two replicas without leader
election, do). One of them, ``lagging``, reaches the apiserver through the fault proxy, which
holds its Bandwidth watch: it still sees the object it last read and wrote. The object is
deleted and the accounting controller makes it again (its ledger rebuilt from the bound pod);
the other scheduler, ``current``, reserves on the new object, which brings it to the
generation the lagging one last saw. The lagging scheduler then reserves on what it remembers.

Before the fix its write tested only ``metadata.generation``, passed on the new object, and
replaced the ledger with the old one plus its pod: ``current``'s reservation was lost. The
guarded write now tests the UID as well, fails, and the lagging scheduler reads the new object
and writes on it.
"""

from __future__ import annotations

import pytest

from bandwidth.model import parse_bandwidth
from kubeio.resources import BANDWIDTHS
from localcluster import ControlPlane
from tests.faults.proxy import FaultProxy
from tests.faults.support import Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]


def _reserved(lab: Lab, node: str) -> set[str]:
    ledger = lab.bandwidth(node)
    return {r.pod_name for r in parse_bandwidth(ledger).reservations.values()} if ledger else set()


def test_a_stale_write_never_lands_on_a_bandwidth_made_again(
    lab: Lab, controlplane: ControlPlane
) -> None:
    with FaultProxy(controlplane.credentials) as proxy:
        accounting = lab.accounting()
        [node] = lab.make_nodes(1, network_mbps=1000)
        wait_for("the Bandwidth", lambda: lab.bandwidth(node))
        other = f"{lab.scheduler_name}-current"
        lagging = lab.scheduler(kubeconfig=proxy.kubeconfig(lab.log_dir / "proxy.kubeconfig"))
        current = lab.scheduler(f"--scheduler-name={other}", name="current")
        for daemon in (lagging, current):
            daemon.wait_synced()

        lab.create_pod("first", egress="100M")
        wait_for("first bound", lambda: lab.bound().get("first"))
        old = parse_bandwidth(lab.bandwidth(node) or {})
        assert old.generation == 2, old  # created, then one reservation

        proxy.hold("/bandwidths")
        lab.kube.delete(BANDWIDTHS.path(name=node))
        new = wait_for(
            "the Bandwidth made again",
            lambda: (b := lab.bandwidth(node)) and b["metadata"]["uid"] != old.uid and b,
        )
        assert _reserved(lab, node) == {"first"}  # rebuilt from the bound pod
        lab.create_pod("second", egress="100M", scheduler_name=other)
        wait_for("second bound", lambda: lab.bound().get("second"))
        made_again = parse_bandwidth(lab.bandwidth(node) or {})
        assert made_again.uid == new["metadata"]["uid"]
        assert made_again.generation == old.generation, "the race needs equal generations"

        lab.create_pod("third", egress="100M")
        wait_for("third bound", lambda: lab.bound().get("third"), timeout=30)
        proxy.release("/bandwidths")
        held = _reserved(lab, node)
        result = lab.settled_audit()
        result.row("Bandwidth deleted and made again under a scheduler whose watch lags")

        assert held == {"first", "second", "third"}, held
        result.assert_clean()
        for daemon in (lagging, current, accounting):
            assert daemon.alive(), daemon.tail()
            assert not daemon.tracebacks(), daemon.tail()
