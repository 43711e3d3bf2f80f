"""The vaclab bandwidth scheduler: a second scheduler that treats bandwidth as a resource.

Map of the package (pure modules first; only ``cluster``, ``binder``, ``loop`` and ``cli``
do I/O):

- ``config``     — ``SchedulerConfig``: names, annotation policy, weights, concurrency.
- ``resources``  — cpu/memory/storage/extended requests as integer vectors.
- ``podfacts``   — what a decision needs from a pod, read once from its JSON.
- ``nodeinfo``   — one node as the scheduler sees it: labels, taints, allocatable, what is
                   requested and reserved on it, including in-flight (assumed) decisions.
- ``plugins``    — one filter or score per module, and the registry of them.
- ``decide``     — filter nodes, score the feasible ones, pick one: pure.
- ``decider``    — ``Decider.choose``: adoption of orphaned reservations, node sampling.
- ``explain``    — kube-scheduler-style summaries ("0/50 nodes are available: ...").
- ``queue``      — active, backoff and unschedulable pods.
- ``cluster``    — watch caches feeding the node infos and the queue.
- ``binder``     — reserve in the Bandwidth CR (coalesced per node, optimistic), then bind.
- ``loop``       — the scheduling loop tying them together.
- ``cli``        — flags and start-up.
"""
