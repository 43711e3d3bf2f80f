"""Benchmarks: ``make bench``.

- ``decisions`` — time per scheduling decision with no API at all, at growing cluster sizes.
- ``workload``  — the synthetic cluster and pods both benchmarks use (fixed seed).
"""
