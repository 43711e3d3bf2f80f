"""``kubectl bandwidth``: the vaclab scheduler's view of network bandwidth, for people.

Map of the package (pure modules first; only ``snapshot.Reader`` and ``cli`` do I/O):

- ``errors``     — one-line errors (CRD missing, access denied...) from API failures.
- ``snapshot``   — LIST once, then replay the lists through the scheduler's ``ClusterState``.
- ``headroom``   — per node: capacity, charged, free; label selection and sort orders.
- ``diagnosis``  — the scheduler's verdict on a pod (``scheduler.verdict``), and each node's
                   answer from its filters and scores.
- ``whatif``     — replicas judged one after another as the scheduler would (with assume); a
                   running workload is scaled; several workloads are simulated together.
- ``holders``    — the pods holding bandwidth on one node, with their workloads.
- ``render``     — tables and JSON/YAML documents of all of the above.
- ``cli``        — flags, the connection, one function per subcommand.

The placement logic is imported from ``scheduler``, never copied: an explanation is the
scheduler's own answer.
"""
