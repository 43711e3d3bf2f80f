"""Chaos soak: a seeded schedule of faults against two scheduler replicas and the accounting
controller under a steady pod load, with an auditor of the books (issue #11).

- ``plan``      — the fault kinds and the schedule drawn from a seed (pure);
- ``workload``  — the pod sets, their annotations and the auditor's own reading of them (pure);
- ``books``     — what the auditor promises and checks on one consistent snapshot (pure);
- ``timeline``  — when faults were in progress; calm time for the tolerances;
- ``rig``       — the private control plane, the nodes, the daemons and their supervisor;
- ``load``      — the pod churn, plus the StatefulSet controller and kubelet roles;
- ``injector``  — carries out the plan against the rig;
- ``auditor``   — consistent snapshots, judged continuously and once quiet;
- ``soak``      — one run end to end and its summary; ``__main__`` is its command line.

``make chaos`` runs ``python -m tests.chaos`` (30 minutes by default); ``test_soak.py`` is the
60-second variant ``make test`` collects; ``test_auditor.py`` plants violations and shows that
the auditor finds each of them.
"""
