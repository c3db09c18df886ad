"""Page tokens for the emulator's List methods.

A token carries the offset of the next page and a digest of the query it belongs to, so
reusing one with another filter or order is refused, as the real API asks callers not to
do ("the values of other method parameters should be identical")."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from typing import TypeVar

from custos.cloud_logging.api_error import invalid

T = TypeVar("T")


def page(items: Sequence[T], size: int, token: str, query: str) -> tuple[list[T], str]:
    """One page of `items` from `token` on, and the token of the next page ('' at the end)."""
    start = _offset(token, query) if token else 0
    stop = start + size
    rest = _token(stop, query) if stop < len(items) else ""
    return list(items[start:stop]), rest


def _token(offset: int, query: str) -> str:
    raw = json.dumps({"offset": offset, "query": _digest(query)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _offset(token: str, query: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset, digest = int(data["offset"]), str(data["query"])
    except (ValueError, KeyError, TypeError) as exc:
        raise invalid(f"page_token {token!r} is not one this server issued") from exc
    if digest != _digest(query) or offset < 0:
        raise invalid("page_token belongs to a request with other parameters")
    return offset


def _digest(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]
