"""A free TCP port on the loopback interface, for the servers a test or a fault run starts itself.

Shared by the tests and the fault suite (``from tests.netkit import free_port``).
"""

from __future__ import annotations

import socket

__all__ = ["free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
