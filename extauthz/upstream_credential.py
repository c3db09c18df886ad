"""The sidecar's own credential for the MCP server, read from a file or an environment
variable. A file is re-read when it changes, so a rotated Kubernetes Secret takes effect
without a restart."""

from __future__ import annotations

import os

from custos.errors import ConfigError
from extauthz.config import UpstreamCredential


class CredentialSource:
    def __init__(self, config: UpstreamCredential) -> None:
        self.config = config
        self._stamp: tuple[int, int] | None = None
        self._value = ""
        self.header_value()  # a missing credential is a start-up error, not a request error

    def header_value(self) -> str:
        raw = self._read()
        return f"{self.config.scheme} {raw}" if self.config.scheme else raw

    def _read(self) -> str:
        if self.config.env is not None:
            value = os.environ.get(self.config.env, "").strip()
            if not value:
                raise ConfigError(f"upstream credential variable {self.config.env} is empty")
            return value
        path = self.config.file
        if path is None:  # the config validator makes this impossible
            raise ConfigError("upstream credential has neither file nor env")
        try:
            st = os.stat(path)
            stamp = (st.st_ino, st.st_mtime_ns)
            if stamp != self._stamp:
                self._value = path.read_text(encoding="ascii").strip()
                self._stamp = stamp
        except OSError as exc:
            raise ConfigError(f"cannot read upstream credential file: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError("upstream credential file is not ASCII text") from exc
        if not self._value:
            raise ConfigError("upstream credential file is empty")
        return self._value
