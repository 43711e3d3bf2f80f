"""Volumes, as kube-scheduler's VolumeBinding, VolumeRestrictions, NodeVolumeLimits and
VolumeZone plugins see them (v1.37). Map, pure modules first:

- ``objects``  — claims, volumes, classes, CSINodes, CSIDrivers, capacities read into values.
- ``matching`` — which volume fits which claim on which node; allowed topologies; zones.
- ``claims``   — a pod's claims resolved once per decision (``PodVolumes``, with the reason
                 no node can take the pod, kube-scheduler's PreFilter), and the plan for one
                 node (``find_pod_volumes``).
- ``catalog``  — the watched objects with in-flight bindings assumed on top (assume caches).

The filters are ``scheduler.plugins.volume_*`` and ``node_volume_limits``; the API writes
that bind the volumes before the pod is bound are ``scheduler.volumebinder``'s.
"""
