"""The quarantine: what the shipper sets aside instead of dropping (a record Cloud Logging
refused, or bytes of a spool that are not whole records), with why.

The quarantine is one file per writer, `quarantine/<writer>.envelopes`: frames as in a
spool segment (the payload's length and CRC-32, big-endian, then the payload), each
payload a JSON object (UTF-8) holding what was set aside and why, together:

    {"sha256": "<hex SHA-256 of the bytes>", "where": "<writer>/<segment>@<offset>",
     "reason": "<why>", "payload": "<the bytes, base64>"}

Each is appended in one write and fsync'd before the mark moves past its bytes, so a
crash leaves the bytes and their reason both or neither: an append cut short is an
unfinished frame at the end, cut off when the shipper next opens the file (its mark had
not moved: the bytes are set aside again). Bytes whose SHA-256 the file holds already
are not set aside again. The reason (which may quote the record) stays in the file,
never in the process log."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from custos.audit.spool import frame, fsync_directory, walk, write_all

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"
ENVELOPES = ".envelopes"


@dataclass(frozen=True)
class SetAside:
    """Bytes set aside in quarantine: a record Cloud Logging refused, or damage."""

    payload: bytes
    where: str  # writer/segment@offset
    reason: str


class Quarantine:
    """What is set aside, one file of envelopes per writer (see the module's docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._held: dict[str, set[str]] = {}  # per writer: the SHA-256 of what its file holds

    def path(self, writer: str) -> Path:
        return self.folder / f"{writer}{ENVELOPES}"

    def add(self, writer: str, item: SetAside) -> bool:
        """Sets `item` aside, durably; False if its bytes were set aside already."""
        digest = hashlib.sha256(item.payload).hexdigest()
        held = self._holding(writer)
        if digest in held:
            return False
        self._make_folder()
        _append_durably(self.path(writer), frame(_envelope(item, digest)))
        held.add(digest)
        return True

    def _holding(self, writer: str) -> set[str]:
        if writer not in self._held:
            items = self._open(writer)
            self._held[writer] = {hashlib.sha256(i.payload).hexdigest() for i in items}
        return self._held[writer]

    def _open(self, writer: str) -> list[SetAside]:
        """What a writer's file holds, once an append a crash cut short is cut off: it was
        never fsync'd whole, so the mark did not move past its bytes, which are set aside
        again; and what comes after must not follow half a frame."""
        path = self.path(writer)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        items, end = read_envelopes(data)
        if end < len(data):
            os.truncate(path, end)
            log.warning("%s: %d bytes of an unfinished append cut off", path.name, len(data) - end)
        return items

    def _make_folder(self) -> None:
        if not self.folder.is_dir():
            self.folder.mkdir(exist_ok=True)
            fsync_directory(self.folder.parent)  # the new name must survive a crash too


def read_envelopes(data: bytes) -> tuple[list[SetAside], int]:
    """The envelopes of a quarantine file, reading on past bytes that are not one (damage
    on disk), and where an unfinished frame at its end starts (its length if none is)."""
    items: list[SetAside] = []
    for at, payload, after in walk(data, accept=lambda p: _opened(p) is not None):
        if payload is None:
            if after == len(data):  # no envelope after it: an append cut short
                return items, at
        elif (item := _opened(payload)) is not None:
            items.append(item)
    return items, len(data)


def _envelope(item: SetAside, digest: str) -> bytes:
    held = {"sha256": digest, "where": item.where, "reason": item.reason}
    return orjson.dumps(held | {"payload": base64.b64encode(item.payload).decode()})


def _opened(envelope: bytes) -> SetAside | None:
    try:
        held = orjson.loads(envelope)
        payload = base64.b64decode(held["payload"], validate=True)
        return SetAside(payload, str(held["where"]), str(held["reason"]))
    except (orjson.JSONDecodeError, binascii.Error, KeyError, TypeError):
        return None


def _append_durably(path: Path, data: bytes) -> None:
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_directory(path.parent)
