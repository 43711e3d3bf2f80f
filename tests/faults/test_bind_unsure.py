"""Bindings whose outcome the scheduler cannot know, and bindings that arrive late.

1. The answer is lost: the fault proxy forwards the scheduler's ``POST pods/binding`` and drops
   the connection instead of the answer. The binding happened; the retry is refused (409), and
   the GETs that would confirm it answer 500 for a while. Before the fix the binder took "no
   answer" for "not bound" and released the reservation of a pod that was bound: the pod ran
   with no reservation. When unsure it now keeps the reservation; the pod watch settles it.
2. The binding is slow: the proxy holds it for longer than the accounting controller's grace
   period, which releases the reservation as ``NeverBound`` meanwhile. Before the fix the
   binding then landed on a pod that had no reservation any more. The release now fences the
   pod first (``kubeio.fencing``): the late binding fails its resourceVersion precondition, the
   binder sees the fence, and the pod is scheduled again, with a reservation.
"""

from __future__ import annotations

import time

import pytest

from localcluster import ControlPlane
from tests.faults.proxy import FaultProxy
from tests.faults.support import Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]


def _reserved(lab: Lab, node: str) -> set[str]:
    entries = (lab.bandwidth(node) or {}).get("spec", {}).get("reservations") or []
    return {entry["podName"] for entry in entries}


def test_a_binding_whose_answer_is_lost_keeps_its_reservation(
    lab: Lab, controlplane: ControlPlane
) -> None:
    with FaultProxy(controlplane.credentials) as proxy:
        accounting = lab.accounting()
        [node] = lab.make_nodes(1, network_mbps=1000)
        wait_for("the Bandwidth", lambda: lab.bandwidth(node))
        scheduler = lab.scheduler(kubeconfig=proxy.kubeconfig(lab.log_dir / "proxy.kubeconfig"))
        scheduler.wait_synced()

        pod = f"/namespaces/{lab.namespace}/pods/lost"
        proxy.target("POST", f"{pod}/binding", lose_answer=True, count=1)
        proxy.target("GET", pod, status=500, seconds=8)
        lab.create_pod("lost", egress="600M")
        assert wait_for("lost bound", lambda: lab.bound().get("lost")) == node
        time.sleep(10)  # past the 500s: whatever the binder decides, it has decided
        lab.create_pod("after", egress="600M")  # must not fit beside "lost"
        time.sleep(3)
        held = _reserved(lab, node)
        result = lab.settled_audit()
        result.row("binding's answer lost, the retry refused (409), the confirming GET 500")

        assert held == {"lost"}, held
        assert "after" not in lab.bound()
        result.assert_clean()
        answered = [r for r in proxy.records() if r.path.split("?")[0].endswith("lost/binding")]
        assert [r.action for r in answered][:2] == ["lose", "forward"], answered
        assert scheduler.named("bind_outcome_unknown") or scheduler.named("bind_confirmed")
        for daemon in (scheduler, accounting):
            assert daemon.alive(), daemon.tail()
            assert not daemon.tracebacks(), daemon.tail()


def test_a_binding_slower_than_the_grace_period_never_lands_after_the_release(
    lab: Lab, controlplane: ControlPlane
) -> None:
    with FaultProxy(controlplane.credentials) as proxy:
        accounting = lab.accounting("--unbound-reservation-grace=2s")
        [node] = lab.make_nodes(1, network_mbps=1000)
        wait_for("the Bandwidth", lambda: lab.bandwidth(node))
        scheduler = lab.scheduler(kubeconfig=proxy.kubeconfig(lab.log_dir / "proxy.kubeconfig"))
        scheduler.wait_synced()

        proxy.target("POST", f"/namespaces/{lab.namespace}/pods/slow/binding", delay=6, count=1)
        lab.create_pod("slow", egress="600M")
        released = wait_for(
            "the reservation released as never bound",
            lambda: accounting.named("reservation_released"),
            timeout=20,
        )
        assert released[0]["reason"] == "NeverBound", released
        assert wait_for("slow bound", lambda: lab.bound().get("slow"), timeout=30) == node
        wait_for("slow reserved again", lambda: _reserved(lab, node) == {"slow"}, timeout=10)
        result = lab.settled_audit()
        result.row("binding held 6 s by the proxy, grace 2 s: released as NeverBound meanwhile")

        result.assert_clean()
        bindings = [r for r in proxy.records() if r.path.split("?")[0].endswith("slow/binding")]
        print(f"bindings sent for the slow pod: {len(bindings)}")
        assert len(bindings) >= 2, bindings
        for daemon in (scheduler, accounting):
            assert daemon.alive(), daemon.tail()
            assert not daemon.tracebacks(), daemon.tail()
