"""Fixtures of the chaos tests: the fault tests' ``kube`` and ``lab`` (a scoped corner of the
shared control plane, removed afterwards) for the auditor's self-test. The soak itself starts
a control plane of its own (``rig``): it SIGKILLs the apiserver."""

from tests.faults.conftest import kube, lab

__all__ = ["kube", "lab"]
