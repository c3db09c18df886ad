"""The audit configuration: one YAML file that ext_authz, ext_proc and the shipper read,
so where records go and what they hold is said once per pod."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from custos.audit.defaults import AUDIT_LOG
from custos.cloud_logging.resource_names import log_id_problem
from custos.config_file import load_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bodies(_Strict):
    """Which bodies a record keeps, and how much of each. A body's digest and size are kept
    whatever this says; its text is where PHI can be (request arguments, what an exception
    let a caller see), so an operator may keep digests only."""

    request: bool = True
    response: bool = True
    max_bytes: int = Field(default=65_536, ge=0, le=16 * 1_048_576)


class Shipping(_Strict):
    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    log_name: str = AUDIT_LOG
    # host:port of a Logging API that speaks plain gRPC (the local emulator); unset, the
    # shipper calls Google with Application Default Credentials (Workload Identity).
    endpoint: str | None = None
    batch_entries: int = Field(default=500, ge=1, le=1000)
    poll_seconds: float = Field(default=0.2, gt=0, le=60)
    # Retries of a transient error back off up to this, then go on at this pace.
    max_backoff_seconds: float = Field(default=30, gt=0)

    @field_validator("log_name")
    @classmethod
    def _log_id(cls, value: str) -> str:
        # The API's rule, as AuditBucket and the emulator hold it: a name the API refuses
        # would load, then every write would fail and every record go to quarantine.
        problem = log_id_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class AuditConfig(_Strict):
    spool_dir: Path
    # An Ed25519 private key (PEM, PKCS#8), e.g. from a mounted Secret; auditors hold the
    # public key.
    signing_key: Path
    # Unset: "<role>-<host name>", unique per pod on Kubernetes.
    writer: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    checkpoint_every_records: int = Field(default=1000, ge=1)
    checkpoint_every_seconds: float = Field(default=60, gt=0)
    bodies: Bodies = Bodies()
    # Query parameters whose values a record keeps (by name); every other value is kept as
    # "[REDACTED]", the name only.
    query_values: frozenset[str] = frozenset()
    segment_bytes: int = Field(default=16 * 1_048_576, ge=4096)
    max_spool_bytes: int = Field(default=1024 * 1_048_576, ge=65_536)
    # When the spool is full: refuse requests (no audit, no access), or serve them with
    # their records dropped, counted and alarmed on.
    when_full: Literal["refuse", "serve"] = "refuse"
    shipping: Shipping | None = None

    def writer_name(self, role: str) -> str:
        return self.writer or f"{role}-{socket.gethostname()}"


def load_audit_config(path: str | Path) -> AuditConfig:
    path = Path(path)
    config = load_model(path, AuditConfig)
    # Relative paths in the file are relative to the file, not to the working directory.
    return config.model_copy(
        update={
            "spool_dir": path.parent / config.spool_dir,
            "signing_key": path.parent / config.signing_key,
        }
    )
