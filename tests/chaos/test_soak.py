"""The 60-second chaos soak that ``make test`` runs (``make chaos`` runs the long one).

Two schedulers with ``--leader-elect``, the accounting controller, a steady pod load and a
seeded fault schedule on a private control plane; the auditor must find nothing, while it ran
and once quiet. Parameters (environment): ``CHAOS_SEED`` (default 1), ``CHAOS_SECONDS``
(default 60), ``CHAOS_FAULTS`` (the mix, default ``all``; see ``tests.chaos.plan``). A failure
prints every violation with the seed and the faults in progress, and keeps the logs; the same
seed replays the same schedule: ``python -m tests.chaos --seconds 60 --seed N``.
"""

from __future__ import annotations

import os

import pytest

from tests.chaos.plan import parse_mix
from tests.chaos.soak import SoakConfig, run_soak

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]


def test_the_books_hold_through_a_minute_of_chaos() -> None:
    config = SoakConfig(
        seed=int(os.environ.get("CHAOS_SEED", "1")),
        seconds=float(os.environ.get("CHAOS_SECONDS", "60")),
        mix=parse_mix(os.environ.get("CHAOS_FAULTS", "all")),
    )
    report = run_soak(config)

    # A soak that injected nothing, bound nothing or audited nothing proves nothing.
    assert sum(report.injected.values()) >= 3, report.summary()
    assert report.load["created"] > 0 and report.bound > 0, report.summary()
    assert report.audits >= config.seconds / 2, report.summary()
    assert report.clean, "\n".join(
        [report.summary(), *(v.render(config.seed) for v in report.violations)]
    )
