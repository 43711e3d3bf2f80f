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
        r"^32/32 pods bound in [\d.]+s; 0 node\(s\) oversubscribed\.$", result.stdout, re.M
    )
    peers_rows = [line for line in result.stdout.splitlines() if "libp2p-peers x" in line]
    assert peers_rows and all(" Ready" in row for row in peers_rows)
