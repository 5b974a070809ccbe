"""The launcher's port picking: every port of a fleet is its own."""

from __future__ import annotations

from launcher import free_port


def test_no_port_is_handed_out_twice():
    # Ports are picked long before their programs bind them; the kernel happily offers
    # a port it offered a moment ago, so without the launcher's memory a few thousand
    # picks repeat some (and two programs of one fleet would fight over one).
    ports = [free_port() for _ in range(3000)]
    assert len(set(ports)) == len(ports)
