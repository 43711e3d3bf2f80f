"""The accounting controller: keeps the books the bandwidth scheduler writes into.

Map of the package (pure modules first; only ``controller`` and ``cli`` do I/O):

- ``capacity``   — node labels/annotations plus defaults → a new Bandwidth's capacity.
- ``pods``       — ``PodView``, the slice of a pod the books read; workloads via ReplicaSets.
- ``books``      — ``keep_books``: charges, stale reservations to release, oversubscription.
- ``status``     — the desired ``status`` and whether it differs from the stored one.
- ``settings``   — ``AccountingSettings``, what the controller is told at start-up.
- ``metrics``    — Prometheus metrics on the daemon's registry.
- ``controller`` — watch caches, the work queue, and the reconcile that writes.
- ``cli``        — flags or a config file, start-up, run until stopped.
"""
