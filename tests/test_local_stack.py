"""The local stack's ports. (`custos run` as a newcomer runs it: tests/test_newcomer.py.)"""

from __future__ import annotations

import dataclasses

from custos.net import free_ports
from custos.stack import Ports


def test_the_stack_gets_a_different_port_for_every_service() -> None:
    # The kernel may hand a port it just took back out at once: two services on one port
    # would make the stack start with one of them silently dead.
    for _ in range(20):
        ports = dataclasses.astuple(Ports.free())
        assert len(set(ports)) == len(ports)
    assert len(set(free_ports(200))) == 200
