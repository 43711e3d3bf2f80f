"""The accounting controller: keeps the books the bandwidth scheduler writes into.

Map of the package (pure modules first; ``lifecycle``, ``release``, ``reporting``,
``controller`` and ``cli`` do I/O):

- ``capacity``   — node labels/annotations plus defaults → a new Bandwidth's capacity.
- ``pods``       — workloads through ReplicaSets; the slim pod the cache keeps (pods are read
                   by ``kubeio.pods``, shared with the scheduler).
- ``books``      — ``keep_books``: charges, stale reservations to release, oversubscription.
- ``status``     — the desired ``status`` and whether it differs from the stored one.
- ``objects``    — small readers of the raw objects the caches hold.
- ``settings``   — ``AccountingSettings``, what the controller is told at start-up.
- ``metrics``    — Prometheus metrics on the daemon's registry.
- ``indexes``    — pods by node and by ReplicaSet, ledgers by pod UID, kept by the handlers.
- ``lifecycle``  — a Bandwidth created with its node, deleted with it.
- ``release``    — stale reservations released: confirmed (or fenced), then a guarded write.
- ``reporting``  — status, Events and warnings.
- ``controller`` — watch caches, the work queue, workers, and the reconcile that ties them.
- ``cli``        — flags or a config file, start-up, run until stopped.
"""
