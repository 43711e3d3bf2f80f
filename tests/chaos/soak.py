"""One soak, end to end: plan, rig, load, faults, auditor, quiet check, summary.

1. The fault plan is drawn from the seed (``plan.fault_plan``) and printed.
2. The rig starts: a private control plane, the nodes, two schedulers and the accounting
   controller, each behind its fault proxy and supervised as a Deployment would be.
3. For ``seconds``: the load churns pods, the injector carries out the plan, the auditor judges
   a consistent snapshot about once a second and prints each violation as it appears.
4. Quiet: faults that are still running finish, every proxy is healed, every daemon and node is
   back, the churn stops with every pod name alive once; the auditor then polls until nothing is
   outstanding (no tolerance now: no stale reservation, no missing Bandwidth, no pending pod that
   fits) or ``settle_seconds`` pass, and reports what is left.
5. One summary: seed, duration, faults injected by kind, pods created and bound, violations by
   kind, and where the logs are (kept when something was found).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.auditor import Auditor, LeaseTracker, Violation, utc_clock
from tests.chaos.books import KINDS, Checker, Tolerances
from tests.chaos.injector import Injector
from tests.chaos.load import Load
from tests.chaos.plan import FAULT_KINDS, PlannedFault, fault_plan, format_mix, parse_mix
from tests.chaos.rig import SCOPE, Rig, RigSettings
from tests.chaos.timeline import FaultTimeline
from tests.faults.support import SCOPE_LABEL


@dataclass(frozen=True, slots=True)
class SoakConfig:
    seed: int
    seconds: float = 60.0
    mix: Mapping[str, float] = field(default_factory=lambda: parse_mix("all"))
    mean_interval: float = 4.0
    """Mean seconds between two faults' starts."""
    rig: RigSettings = RigSettings()
    settle_seconds: float = 60.0
    audit_interval: float = 1.0
    stale_seconds: float = 15.0
    missing_bandwidth_seconds: float = 10.0
    log_dir: Path | None = None
    keep_logs: bool = False

    @property
    def tolerances(self) -> Tolerances:
        return Tolerances(
            stale_seconds=self.stale_seconds,
            unbound_grace_seconds=self.rig.unbound_grace,
            missing_bandwidth_seconds=self.missing_bandwidth_seconds,
        )

    def plan(self) -> tuple[PlannedFault, ...]:
        return fault_plan(self.seed, self.seconds, self.mix, self.mean_interval)


@dataclass
class SoakReport:
    config: SoakConfig
    plan: tuple[PlannedFault, ...]
    injected: Counter[str]
    skipped: Counter[str]
    load: Counter[str]
    bound: int
    pending_at_end: int
    audits: int
    unanswered: int
    settled_after: float
    violations: list[Violation]
    restarts: dict[str, int]
    exits: list[str]
    tracebacks: dict[str, int]
    thread_deaths: list[str]
    leases: list[str]
    queues: list[str]
    log_dir: Path
    fault_log: list[str]

    @property
    def by_kind(self) -> Counter[str]:
        return Counter(v.kind for v in self.violations)

    @property
    def clean(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        c = self.config
        faults = " ".join(f"{k}={self.injected[k]}" for k in FAULT_KINDS if self.injected[k])
        skipped = " ".join(f"{k}={n}" for k, n in sorted(self.skipped.items()))
        kinds = " ".join(f"{kind}={self.by_kind[kind]}" for kind in KINDS)
        return "\n".join(
            [
                f"CHAOS SUMMARY seed={c.seed} duration={c.seconds:g}s nodes={c.rig.nodes} "
                f"mix={format_mix(c.mix)} mean-interval={c.mean_interval:g}s",
                f"  faults injected: {sum(self.injected.values())} ({faults or 'none'})"
                + (f"; skipped or failed: {skipped}" if skipped else ""),
                f"  pods: created {self.load['created']}, seen bound {self.bound} (distinct "
                f"UIDs), pending at the end {self.pending_at_end}; load: "
                + ", ".join(f"{k} {n}" for k, n in sorted(self.load.items()) if k != "created"),
                f"  audits: {self.audits} ({self.unanswered} unanswered); quiet check done "
                f"{self.settled_after:.1f}s after the cluster was quiet",
                f"  daemons: restarted by the supervisor {self.restarts or 'never'}; stack traces "
                f"in logs {self.tracebacks or 'none'}",
                *(f"    {line}" for line in self.exits),
                *(f"    {line}" for line in self.thread_deaths),
                "  leases at the end: " + "; ".join(self.leases),
                "  scheduler attempts and queues " + "; ".join(self.queues),
                f"  violations: {len(self.violations)} ({kinds})",
                f"  logs: {self.log_dir}" if self.log_dir.exists() else "  logs: removed (clean)",
            ]
        )


def _one_line_at_a_time(out: Callable[[str], None]) -> Callable[[str], None]:
    """Fault threads, the auditor and the main thread print through one lock."""
    lock = threading.Lock()

    def locked(line: str) -> None:
        with lock:
            out(line)

    return locked


def run_soak(config: SoakConfig, out: Callable[[str], None] = print) -> SoakReport:
    out = _one_line_at_a_time(out)
    log_dir = config.log_dir or Path(tempfile.mkdtemp(prefix=f"vaclab-chaos-{config.seed}-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    plan = config.plan()
    out(
        f"CHAOS PLAN seed={config.seed} duration={config.seconds:g}s "
        f"mix={format_mix(config.mix)} ({len(plan)} faults)"
    )
    for fault in plan:
        out(f"  {fault.describe()}")
    timeline = FaultTimeline(recovery=config.rig.lease_duration + 5.0)
    rig = Rig(config.rig, log_dir, config.seed)
    try:
        began = time.monotonic()
        rig.start()
        started = time.monotonic()
        out(
            f"CHAOS START t=0 is {utc_clock()} UTC (rig ready in {started - began:.1f}s); "
            f"logs in {log_dir}"
        )
        checker = Checker(rig.scheduler_name, config.tolerances, timeline.calm_seconds)
        auditor = Auditor(
            rig.kube,
            namespace=rig.namespace,
            node_selector=f"{SCOPE_LABEL}={SCOPE}",
            prefix=f"{SCOPE}-",
            checker=checker,
            timeline=timeline,
            seed=config.seed,
            started=started,
            interval=config.audit_interval,
            leases=LeaseTracker(rig.kube, rig),
            out=out,
        )
        load = Load(rig, config.seed)
        injector = Injector(rig, load, auditor, timeline, plan, config.seed, out=out)
        auditor.start()
        load.start()
        stop = threading.Event()
        scheduling = threading.Thread(target=injector.run, args=(started, stop), daemon=True)
        scheduling.start()
        time.sleep(max(0.0, started + config.seconds - time.monotonic()))
        stop.set()
        scheduling.join(10)
        if not injector.join(120):
            out("CHAOS WARNING some faults were still running after 120 s of quiet")
        rig.heal()
        if not load.drain(60):
            out("CHAOS WARNING the load could not bring every pod name back in 60 s")
        load.stop()
        auditor.stop()
        out(f"CHAOS QUIET at t={time.monotonic() - started:.1f}s; final check")
        queues = [f"at quiet: {rig.scheduler_queues() or 'unknown'}"]
        settled_after, _ = auditor.settle(config.settle_seconds)
        queues.append(f"at the end: {rig.scheduler_queues() or 'unknown'}")
        last = auditor.snapshot()
        pending = (
            sum(
                1
                for p in last.pods
                if not p["spec"].get("nodeName")
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            )
            if last
            else -1
        )
        report = SoakReport(
            config=config,
            plan=plan,
            injected=injector.injected,
            skipped=injector.skipped,
            load=load.counts,
            bound=len(auditor.stats.bound_uids | load.bound_uids),
            pending_at_end=pending,
            audits=auditor.stats.audits,
            unanswered=auditor.stats.unanswered,
            settled_after=settled_after,
            violations=sorted(auditor.violations.values(), key=lambda v: v.first_at),
            restarts=dict(rig.restarts),
            exits=[
                f"t={e.at - started:.1f}s {e.slot} {e.cause} (code {e.code}): "
                + " | ".join(line[:200] for line in e.last_lines.splitlines()[-2:])
                for e in rig.exits
            ],
            tracebacks=rig.tracebacks(),
            thread_deaths=rig.thread_deaths(),
            leases=rig.lease_report(),
            queues=queues,
            log_dir=log_dir,
            fault_log=list(injector.log),
        )
    finally:
        rig.stop()
    if report.clean and not config.keep_logs and config.log_dir is None:
        shutil.rmtree(log_dir, ignore_errors=True)
    out(report.summary())
    return report
