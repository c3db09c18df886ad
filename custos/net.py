"""Small network helpers for the local stack and the tests (loopback only)."""

from __future__ import annotations

import asyncio
import contextlib
import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out; for processes that must be told theirs up front."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` different ports: each socket stays bound until all are picked, since the
    kernel may hand a port it just took back out again."""
    with contextlib.ExitStack() as sockets:
        ports = []
        for _ in range(count):
            sock = sockets.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def ports_in_use(ports: list[int], host: str = "127.0.0.1") -> list[int]:
    """The ports something listens on already. SO_REUSEADDR, as the services bind theirs:
    connections a stopped process left in TIME_WAIT do not count."""
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                busy.append(port)
    return busy


async def wait_for_port(host: str, port: int) -> None:
    """Return once something accepts connections on host:port; bound it with a timeout."""
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
