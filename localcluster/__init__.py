"""A real kube-apiserver + etcd on loopback for tests, demos and benchmarks.

- :class:`ControlPlane`: start/stop etcd, kube-apiserver and optionally
  kube-controller-manager and kube-scheduler (:mod:`localcluster.controlplane`);
- :func:`install_crds`: apply the repository's CRDs and wait until served;
- :func:`create_simulated_nodes` / :func:`delete_simulated_nodes`: kubelet-less Ready nodes;
- :mod:`localcluster.binaries`: find or build the binaries (``python -m localcluster build``).
"""

from localcluster.binaries import MissingBinaryError
from localcluster.controlplane import ControlPlane
from localcluster.crds import install_crds
from localcluster.nodes import create_simulated_nodes, delete_simulated_nodes
from localcluster.process import ProcessStartError

__all__ = [
    "ControlPlane",
    "MissingBinaryError",
    "ProcessStartError",
    "create_simulated_nodes",
    "delete_simulated_nodes",
    "install_crds",
]
