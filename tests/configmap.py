"""A directory laid out as the kubelet mounts a ConfigMap, and updated the way it does it:
each key is a symlink through `..data`, which points at a timestamped directory; an update
writes a new such directory, repoints `..data` at it in one rename, then removes the old."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class ConfigMapMount:
    def __init__(self, root: Path, files: dict[str, str]) -> None:
        self.root = root
        self.root.mkdir(parents=True)
        self._generation = 0
        self._write(files)
        for name in files:
            (self.root / name).symlink_to(Path("..data") / name)

    def path(self, name: str) -> Path:
        return self.root / name

    def update(self, files: dict[str, str], keep_mtime: bool = True) -> None:
        """New contents, swapped in atomically. With `keep_mtime`, each new file takes its
        old file's mtime, as a coarse clock would give it: only the inode tells."""
        old = (self.root / "..data").resolve()
        self._write(files)
        if keep_mtime:
            for name in files:
                before = (old / name).stat()
                os.utime(self.root / "..data" / name, ns=(before.st_atime_ns, before.st_mtime_ns))
        shutil.rmtree(old)

    def _write(self, files: dict[str, str]) -> None:
        self._generation += 1
        stamped = self.root / f"..2026_11_26_{self._generation:02d}"
        stamped.mkdir()
        for name, text in files.items():
            (stamped / name).write_text(text)
        swap = self.root / "..data_tmp"
        swap.symlink_to(stamped.name)
        os.replace(swap, self.root / "..data")  # rename(2): readers see old or new, never none


def rewrite(path: Path, text: str) -> None:
    """Replace a plain file in one step, as an editor saving it does: a new file with its
    mtime pushed forward (so the change is seen even where the filesystem's timestamp
    resolution would hide two writes in the same tick), renamed over the old one. Written
    in place, a watcher could see it twice: once written, once re-stamped."""
    before = path.stat().st_mtime_ns
    fresh = path.with_name(f".{path.name}.new")
    fresh.write_text(text)
    later = before + 2_000_000_000
    os.utime(fresh, ns=(later, later))
    os.replace(fresh, path)
