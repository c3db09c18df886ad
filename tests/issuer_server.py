"""A real development OIDC issuer on a loopback port, served from a background thread.

Tests talk to it over HTTP exactly as ext_authz talks to a real IdP, so nothing in the
identity path is mocked. The server counts the requests it sees, which is how the tests
prove that a forged `kid` or a foreign `iss` did (or did not) reach the IdP."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from custos.dev_issuer import DEFAULT_AUDIENCE, DevIssuer

STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class _CountingApp:
    """Counts HTTP requests by path before the issuer app answers them."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        # Incremented on the server thread, read on the test thread: guard it.
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self.delay_seconds = 0.0  # > 0: a slow IdP, answering correctly but late

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            with self._lock:
                self._counts[scope["path"]] += 1
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
        await self._app(scope, receive, send)

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)


class IssuerServer:
    """A `DevIssuer` served by uvicorn on 127.0.0.1 and an ephemeral port."""

    def __init__(self, audience: str = DEFAULT_AUDIENCE, **issuer_args: Any) -> None:
        # The issuer URL has to name the real port, and the port is only known once bound:
        # bind first, build the issuer from the bound address, then serve that very socket.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        host, port = self._sock.getsockname()[:2]
        self.issuer = DevIssuer(f"http://{host}:{port}", audience=audience, **issuer_args)
        self._app = _CountingApp(self.issuer.app())
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self.port = 0

    def slow_down(self, seconds: float) -> None:
        self._app.delay_seconds = seconds

    def start(self) -> IssuerServer:
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("development issuer did not start")
            time.sleep(0.005)
        # Read the port back from what uvicorn actually listens on, not from our own bind.
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        if self.issuer.issuer != f"http://127.0.0.1:{self.port}":
            self.stop()
            raise RuntimeError("issuer URL does not name the port being served")
        return self

    def stop(self) -> None:
        """Stop serving and close the port: afterwards connections are refused (IdP down)."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT_S)
            if self._thread.is_alive():  # a client holding a connection open; do not hang
                self._server.force_exit = True
                self._thread.join(STOP_TIMEOUT_S)
        self._sock.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def url(self) -> str:
        return self.issuer.issuer

    @property
    def jwks_requests(self) -> int:
        return self._app.counts()["/jwks"]

    @property
    def discovery_requests(self) -> int:
        return self._app.counts()["/.well-known/openid-configuration"]

    @property
    def total_requests(self) -> int:
        return sum(self._app.counts().values())

    def __enter__(self) -> IssuerServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
