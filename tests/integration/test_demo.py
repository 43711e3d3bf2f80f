"""The README's run command works: the demo places every pod and oversubscribes nothing."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.mark.controlplane
@pytest.mark.slow
def test_demo_runs_end_to_end() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "localcluster", "demo", "--timeout", "90"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(
        r"^(\d+)/\1 pods bound in [\d.]+s; 0 node\(s\) oversubscribed\.$", result.stdout, re.M
    )
    assert re.search(
        r"^4/4 claims bound to the local disk of their pod's node\.$", result.stdout, re.M
    )
    # The gateways' zone anti-affinity: three replicas, three zones.
    gateways = re.search(r"^gateways, one per zone: (.*)$", result.stdout, re.M)
    assert gateways, result.stdout
    zones = [entry.split()[0] for entry in gateways.group(1).split(", ")]
    assert sorted(zones) == ["zone-a", "zone-b", "zone-c"], gateways.group(0)
    # One preemption: the urgent run took room from a few pods of lower priority and was bound.
    assert re.search(
        r"^preemption: urgent-run \(priority 1000, \d+ Mbps up\) preempted [1-9]\d* pod\(s\) of "
        r"lower priority on \S+: .+; bound there in [\d.]+s$",
        result.stdout,
        re.M,
    ), result.stdout
    peers_rows = [line for line in result.stdout.splitlines() if "libp2p-peers x" in line]
    assert peers_rows and all(" Ready" in row for row in peers_rows)
