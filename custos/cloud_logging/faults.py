"""Faults the emulator injects into WriteLogEntries, set from the test's thread and taken
by the gRPC worker that answers the next call."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc

# What the real service says, near enough for a reader of logs to recognise it.
MESSAGES = {
    grpc.StatusCode.UNAVAILABLE: "The service is currently unavailable.",
    grpc.StatusCode.RESOURCE_EXHAUSTED: (
        "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per "
        "minute' of service 'logging.googleapis.com' (injected by the emulator)"
    ),
    grpc.StatusCode.INVALID_ARGUMENT: "Request contains an invalid argument (injected).",
}


@dataclass(frozen=True)
class Fault:
    """What happens to one call: a delay first, then `code` (None: answer normally)."""

    code: grpc.StatusCode | None = None
    message: str = ""
    delay_seconds: float = 0.0


class FaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        self._remaining: int | None = None  # None with a fault: every call until cleared

    def set(self, fault: Fault, times: int | None) -> None:
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for every call")
        with self._lock:
            self._fault, self._remaining = fault, times

    def clear(self) -> None:
        with self._lock:
            self._fault, self._remaining = None, None

    def take(self) -> Fault | None:
        """The fault for the call now arriving, if any; counts it against `times`."""
        with self._lock:
            fault = self._fault
            if fault is not None and self._remaining is not None:
                self._remaining -= 1
                if self._remaining == 0:
                    self._fault, self._remaining = None, None
            return fault
