"""Every line both daemons write is one JSON object under ``--log-format json``, through the
noisiest start an operator meets: a kubeconfig with ``insecure-skip-tls-verify``, leader
election on, and kube-apiserver restarted under load (refused connections, ended watches,
failed Lease renewals).

What used to leak in the stdlib's plain format or raw: urllib3's ``Retrying (...)`` warnings
(three per failed request), its ``InsecureRequestWarning`` on every request, and tracebacks of
library threads. Now urllib3 does not retry a broken connection itself, the insecure setting is
said once, and anything a library logs, warns or raises arrives as a structured event.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.faults.conftest import PrivateLab
from tests.faults.support import Daemon, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

NODES = 4
PER_NODE = 10
PODS = 60


def insecure_copy(kubeconfig: Path, to: Path) -> Path:
    """The kubeconfig with the cluster's CA removed and certificate checks turned off."""
    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"].pop("certificate-authority", None)
        cluster["cluster"].pop("certificate-authority-data", None)
        cluster["cluster"]["insecure-skip-tls-verify"] = True
    to.write_text(yaml.safe_dump(config))
    return to


def every_line(daemon: Daemon) -> list[dict[str, Any]]:
    """Each line of stderr and stdout as a JSON object; the assertion names any other line."""
    events = []
    for path in (daemon.log, daemon.out):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            try:
                event = json.loads(line)
            except ValueError:
                raise AssertionError(f"{path.name}:{number} is not JSON: {line!r}") from None
            assert isinstance(event, dict), f"{path.name}:{number}: {line!r}"
            assert {"event", "level", "logger", "timestamp"} <= set(event), line
            events.append(event)
    return events


def test_both_daemons_write_only_json_through_an_apiserver_restart(
    private_lab: PrivateLab, tmp_path: Path
) -> None:
    cp, lab = private_lab()
    insecure = insecure_copy(cp.kubeconfig_path, tmp_path / "insecure-kubeconfig")
    # Renewals fail while the apiserver is away (about 13 s); a renew deadline longer than that
    # keeps each daemon leading through it (shorter, it would exit 1 to be restarted).
    lease = (
        f"--leader-elect-resource-namespace={lab.namespace}",
        "--leader-elect-lease-duration=60s",
        "--leader-elect-renew-deadline=40s",
    )
    accounting = lab.accounting("--leader-elect", *lease, kubeconfig=insecure)
    lab.make_nodes(NODES, network_mbps=PER_NODE * 100)
    wait_for("a Bandwidth per node", lambda: len(lab.bandwidths()) == NODES)
    scheduler = lab.scheduler("--leader-elect", *lease, kubeconfig=insecure)
    scheduler.wait_synced()

    burst = threading.Thread(
        target=lab.create_pods, args=([f"p-{i:02d}" for i in range(PODS)],), daemon=True
    )
    burst.start()
    wait_for("10 pods bound", lambda: len(lab.bound()) >= 10, timeout=60, interval=0.05)
    stopped = time.monotonic()
    cp.restart_apiserver()
    print(f"kube-apiserver away {time.monotonic() - stopped:.1f}s")
    burst.join(90)
    fits = NODES * PER_NODE
    wait_for(f"{fits} pods bound", lambda: len(lab.bound()) == fits, timeout=90, interval=0.25)
    lab.settled_audit().assert_clean()
    assert [d.stop() for d in (scheduler, accounting)] == [0, 0]

    for daemon in (scheduler, accounting):
        events = every_line(daemon)
        said = Counter(e["event"] for e in events)
        print(daemon.name, dict(said))
        (insecure_warning,) = [e for e in events if e["event"] == "tls_verification_off"]
        assert insecure_warning["level"] == "warning"
        assert insecure_warning["kubeconfig_setting"] == "insecure-skip-tls-verify: true"
        assert said["started_leading"] == 1
        # The restart was seen, and said by the daemons' own retry and watch events.
        assert said["watch_failed"] + said["lease_unreachable"] > 0, dict(said)
        assert not [e for e in events if e["event"] == "python_warning"]
        assert not [e for e in events if str(e["event"]).startswith("Retrying")]
        # Nothing reached the streams but through the log configuration.
        assert not [e for e in events if e["event"] == "stray_output"]
        assert {e["logger"] for e in events} >= {"kubeio.leader"}
        assert all(e["level"] in ("debug", "info", "warning", "error", "critical") for e in events)
