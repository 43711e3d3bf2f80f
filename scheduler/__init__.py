"""The vaclab bandwidth scheduler: a second scheduler that treats bandwidth as a resource.

Map of the package (pure modules first; only ``cluster``, ``binder``, ``volumebinder``,
``loop``, ``cli`` and ``preemption.executor`` do I/O):

- ``config``     — ``SchedulerConfig``: names, annotation policy, weights, concurrency.
- ``resources``  — cpu/memory/storage/extended requests as integer vectors.
- ``podfacts``   — what a decision needs from a pod, read once from its JSON.
- ``podterms``   — its inter-pod terms, spread constraints and host ports, as plain values.
- ``podindex``   — placed pods by namespace and label, placed pods' terms by label.
- ``nodeinfo``   — one node as the scheduler sees it: labels, taints, allocatable, what is
                   requested and reserved on it, including in-flight (assumed) decisions.
- ``volumes``    — claims, volumes and classes as kube-scheduler's volume plugins see them;
                   the catalog of them with in-flight bindings assumed.
- ``plugins``    — one filter or score per module, and the registry of them.
- ``decide``     — prefilter the pod, filter nodes, score the feasible ones, pick one: pure.
- ``decider``    — ``Decider.choose``: adoption of orphaned reservations, the nominated
                   node first, node sampling.
- ``explain``    — kube-scheduler-style summaries ("0/50 nodes are available: ...").
- ``preemption`` — the PostFilter: lower-priority victims, the nominated node, the room
                   held for it (a package: what-if, nominator, budgets, victims, evaluator,
                   executor).
- ``queue``      — active, backoff and unschedulable pods.
- ``cluster``    — watch caches feeding the node infos and the queue.
- ``binder``     — reserve in the Bandwidth CR (coalesced per node, optimistic), then bind.
- ``volumebinder`` — between the two, bind the pod's volumes through the API and wait.
- ``loop``       — the scheduling loop tying them together.
- ``cli``        — flags and start-up.
"""
