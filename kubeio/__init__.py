"""Kubernetes plumbing shared by the scheduler and the accounting controller.

Map of the package:

- ``errors``     — one exception type per API failure (``NotFound``, ``Conflict``, ``Gone``...).
- ``resources``  — API paths of the kinds we touch (pods, nodes, bandwidths, events, leases).
- ``rest``       — ``KubeApi``: raw JSON requests and watch streams over the official client's
                   connection and auth, counted per verb/resource/code, writes behind the
                   leader's fence.
- ``config``     — ``--kubeconfig``, then ``KUBECONFIG``, then in-cluster.
- ``retry``      — waits between retries of transient failures, never below ``Retry-After``.
- ``objects``    — small readers of object metadata (terminal phases, controller owner).
- ``pods``       — ``read_pod_basics``: the one reader of a pod's identity, placement, phase,
                   owner and bandwidth request, for both daemons.
- ``guarded``    — compare-and-swap on a Bandwidth's spec (UID and generation).
- ``fencing``    — the fence on a pod that makes a never-bound release safe against a
                   binding still on its way.
- ``watchcache`` — list+watch caches of raw objects, resuming from resourceVersion and
                   relisting after 410 Gone; an object is its UID.
- ``events``     — an asynchronous, de-duplicating Event recorder.
- ``logs``       — structlog set-up: JSON in the cluster, console locally.
- ``workqueue``  — a de-duplicating, rate-limited queue of keys for level-based reconciles.
- ``labels``     — label selector strings (``pool=lab,!virtual``) matched on the client side.
- ``durations``  — ``90s``, ``5m``, ``1m30s`` for command-line flags.
- ``leader``     — leader election on a Lease, and the fence on the leader's writes.
- ``liveness``   — heartbeats of the vital loops, for ``/healthz``.
- ``serving``    — the metrics and health endpoints.
- ``daemon``     — what both daemons share at start-up, and their run loop.
"""
