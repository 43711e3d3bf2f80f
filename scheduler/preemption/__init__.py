"""Preemption by priority, with kube-scheduler's DefaultPreemption as the specification.

When no node takes a pod, the scheduling loop runs the PostFilter: lower-priority pods may be
preempted to make room for it, the bandwidth on all four axes and every other filter included.
Map of the package (only ``executor`` does I/O):

- ``whatif``     — a node copy with pods taken off or put on, the plugins' state kept true.
- ``nominator``  — which pending pods are nominated to which node (room held for them).
- ``budgets``    — PodDisruptionBudgets, and which victims would break one.
- ``victims``    — the fewest victims on one node; the choice of node.
- ``evaluator``  — the PostFilter: eligible?, candidates, the plan.
- ``executor``   — the plan's writes: condition, graceful delete, Event.

A pod's life through a preemption::

    pending ── no node fits ──► PostFilter ── no candidate ──► unschedulable (nomination dropped)
                                   │
                                   └─ plan ──► nominated to N ──► victims get DisruptionTarget,
                                               (status and       a graceful delete, an Event
                                                in memory)              │
           bound to N ◄── fits ◄── victims gone, their ◄── terminating: they still hold
           (reservation written     reservations released   their bandwidth; the pod waits,
            only now)               by the accounting       nominated ("waiting")
                                    controller

Meanwhile pods of lower or equal priority count the nominated pod as placed on N (filters),
so the room freed for it is not taken.
"""
