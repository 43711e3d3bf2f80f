"""Ports handed to local components: free, and never the same twice in one process."""

from __future__ import annotations

import socket

from localcluster.process import free_port


def test_no_port_is_handed_out_twice_even_when_the_kernel_offers_it_again() -> None:
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    for port in ports[-3:]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # still free: nothing was left listening
