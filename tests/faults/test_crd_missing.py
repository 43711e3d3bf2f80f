"""The Bandwidth CRD is not installed when the scheduler starts.

It says so in one line naming what to install, retries with a growing back-off (never a stack
trace, never a tight loop), and schedules as soon as the CRD is there. (The accounting
controller's side is ``tests/integration/accounting/test_daemon.py``.)
"""

from __future__ import annotations

import pytest

from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import new_bandwidth_object
from kubeio.resources import BANDWIDTHS
from localcluster import install_crds
from tests.faults.conftest import PrivateLab
from tests.faults.support import wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]


def test_the_scheduler_waits_for_the_crd_with_one_clear_line_and_no_stack_trace(
    private_lab: PrivateLab,
) -> None:
    _, lab = private_lab(crds=False)
    scheduler = lab.scheduler()
    missing = wait_for(
        "two resource_not_served lines",
        lambda: (
            scheduler.named("resource_not_served")[1:] and scheduler.named("resource_not_served")
        ),
        timeout=30,
    )
    assert {e["kind"] for e in missing} == {"bandwidths"}
    assert all("kubectl apply -f crds/" in e["hint"] for e in missing), missing
    delays = [e["retry_in_seconds"] for e in missing]
    assert delays == sorted(delays) and delays[1] > delays[0], delays
    assert scheduler.alive()

    install_crds(lab.api_client)
    [node] = lab.make_nodes(1)
    capacity = Usage(local=LinkBudget(20000, 20000), network=LinkBudget(1000, 1000))
    lab.kube.create(BANDWIDTHS.path(), new_bandwidth_object(node, capacity))
    lab.create_pod("first", egress="100M")
    assert wait_for("the pod bound", lambda: lab.bound().get("first"), timeout=60) == node
    result = lab.settled_audit()
    result.row("Bandwidth CRD missing at start, installed later")

    result.assert_clean()
    lines = scheduler.named("resource_not_served")
    backoff = [e["retry_in_seconds"] for e in lines]
    print(f"resource_not_served lines: {len(lines)}, back-off {backoff}")
    print(f"first line: {lines[0]}")
    assert scheduler.stop() == 0
    assert not scheduler.tracebacks(), scheduler.tail()
    assert "Traceback" not in scheduler.out.read_text()
