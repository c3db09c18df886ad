"""Small network helpers for the local stack and the tests (loopback only)."""

from __future__ import annotations

import asyncio
import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out; for processes that must be told theirs up front."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
