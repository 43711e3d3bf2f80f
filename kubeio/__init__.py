"""Kubernetes plumbing shared by the scheduler and the accounting controller.

Map of the package:

- ``errors``     — one exception type per API failure (``NotFound``, ``Conflict``, ``Gone``...).
- ``resources``  — API paths of the kinds we touch (pods, nodes, bandwidths, events, leases).
- ``rest``       — ``KubeApi``: raw JSON requests and watch streams over the official client's
                   connection and auth, counted per verb/resource/code.
- ``config``     — ``--kubeconfig``, then ``KUBECONFIG``, then in-cluster.
- ``retry``      — tenacity policies for transient failures (429, 5xx, connection resets).
- ``watchcache`` — list+watch caches of raw objects, resuming from resourceVersion and
                   relisting after 410 Gone.
- ``events``     — an asynchronous, de-duplicating Event recorder.
- ``logs``       — structlog set-up: JSON in the cluster, console locally.
- ``workqueue``  — a de-duplicating, rate-limited queue of keys for level-based reconciles.
- ``labels``     — label selector strings (``pool=lab,!virtual``) matched on the client side.
- ``durations``  — ``90s``, ``5m``, ``1m30s`` for command-line flags.
"""
