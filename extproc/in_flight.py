"""The JSON-RPC ids of the requests in flight in each MCP session, across the exchanges of
this ext_proc.

The MCP SDK routes a response by its id alone, and reads 7 and "7" as one id: a second
request with an id still in flight makes it send an answer down the wrong stream, and
leaves the other open for good. So a request whose id is in flight in its session is
refused before it reaches the server. The ids are the session's until its exchange ends.

Sessions are kept apart by the id the server gave them; a pod's replicas do not share this
table, so a session must stay on one pod, as MCP servers that keep sessions require."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from custos.errors import CustosError

Claim = frozenset[tuple[str, str]]
_MOST = 100_000  # ids held at once: each is an open request, which Envoy bounds anyway
_PER_SESSION = 256  # a batch is at most 32 calls; a client rarely waits on more at once


class IdInFlight(CustosError):
    """A request with an id that a request of the same session still waits an answer on."""

    code = "request_id_in_flight"
    http_status = 409
    message = "a request with this id is already in flight in this session"


class InFlightFull(CustosError):
    code = "in_flight_full"
    http_status = 503
    message = "too many requests in flight"


class InFlight:
    """Thread-safe: an exchange's messages may be handled in a worker thread. Bounded in
    all and per session, so that no caller holding slow requests locks the others out."""

    def __init__(self, most: int = _MOST, per_session: int = _PER_SESSION) -> None:
        self._held: set[tuple[str, str]] = set()
        self._sessions: dict[str, int] = {}  # ids held, by session
        self._most = most
        self._per_session = per_session
        self._lock = threading.Lock()

    def claim(self, session: str, ids: Iterable[str | int | float]) -> Claim:
        """Holds these ids for `session` until released; raises if one is held already."""
        keys = frozenset((session, str(i)) for i in ids)  # 7 and "7": one id to the SDK
        with self._lock:
            if keys & self._held:
                raise IdInFlight(IdInFlight.message)
            held = self._sessions.get(session, 0)
            if held + len(keys) > self._per_session or len(self._held) + len(keys) > self._most:
                raise InFlightFull(InFlightFull.message)
            self._held |= keys
            self._sessions[session] = held + len(keys)
        return keys

    def release(self, claim: Claim) -> None:
        with self._lock:
            for key in claim & self._held:
                self._held.discard(key)
                left = self._sessions[key[0]] - 1
                if left:
                    self._sessions[key[0]] = left
                else:
                    del self._sessions[key[0]]

    def __len__(self) -> int:
        return len(self._held)
