"""The bandwidth domain: pure data and arithmetic, no Kubernetes client.

Map of the package (imports only go downward):

- ``quantity``  — annotation text to whole Mbps (``parse_mbps``), never rounding down.
- ``request``   — a pod's annotations to a ``BandwidthRequest`` (uplink, downlink, link-local).
- ``budget``    — ``LinkBudget`` (uplink/downlink Mbps), ``Usage`` over the two datapaths, axes.
- ``model``     — the Bandwidth custom resource as typed values, read tolerantly, written exactly.
- ``ledger``    — headroom arithmetic: what a node has left and whether a request fits.
"""
