"""ext_authz configuration: a YAML file validated on load; unknown keys are errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from custos.config_file import load_model

# Asymmetric signatures only: `none` and HMAC (whose "key" would be the public key) are
# never accepted, whatever a configuration says.
SUPPORTED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
Algorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
HeaderName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]


def is_trusted_url(url: str) -> bool:
    """Keys fetched over plain HTTP could be swapped by anyone on the path, letting them
    mint any identity; only loopback (the development issuer) may skip TLS."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IssuerConfig(_Strict):
    issuer: str
    audience: str = Field(min_length=1)
    # Discovery normally lives under the issuer; override for split-horizon setups.
    discovery_url: str | None = None
    algorithms: tuple[Algorithm, ...] = ("RS256", "PS256", "ES256")
    groups_claim: str = "groups"  # dotted path for nested claims, e.g. realm_access.roles
    email_claim: str = "email"
    leeway_seconds: float = Field(default=30, ge=0, le=300)
    jwks_ttl_seconds: float = Field(default=300, gt=0)
    # An unknown `kid` refetches the JWKS at most once per this interval.
    jwks_refetch_interval_seconds: float = Field(default=30, ge=1)
    http_timeout_seconds: float = Field(default=5, gt=0, le=60)

    @field_validator("issuer", "discovery_url")
    @classmethod
    def _trusted_transport(cls, url: str | None) -> str | None:
        if url is not None and not is_trusted_url(url):
            raise ValueError("must be https (plain http only on loopback, for development)")
        return url

    @property
    def discovery(self) -> str:
        return self.discovery_url or self.issuer.rstrip("/") + "/.well-known/openid-configuration"


class UpstreamCredential(_Strict):
    """The sidecar's own credential for the MCP server, replacing the client's token."""

    file: Path | None = None
    env: str | None = None
    header: HeaderName = "authorization"
    scheme: str = "Bearer"

    @model_validator(mode="after")
    def _one_source(self) -> UpstreamCredential:
        if (self.file is None) == (self.env is None):
            raise ValueError("set exactly one of 'file' or 'env'")
        return self


class IdentityHeaders(_Strict):
    """Headers that tell the MCP server who called; empty name = not sent."""

    subject: HeaderName | Literal[""] = "x-custos-subject"
    issuer: HeaderName | Literal[""] = "x-custos-issuer"
    email: HeaderName | Literal[""] = "x-custos-email"
    groups: HeaderName | Literal[""] = "x-custos-groups"
    decision_id: HeaderName | Literal[""] = "x-custos-decision-id"


class AuthzConfig(_Strict):
    listen: str = "127.0.0.1:9001"
    metrics_listen: str = "127.0.0.1:9002"
    # A port serving only grpc.health.v1.Health, for the kubelet's probes on the pod IP
    # while `listen` stays on loopback.
    health_listen: str | None = None
    policy: Path
    policy_reload_seconds: float = Field(default=1.0, gt=0)
    issuers: tuple[IssuerConfig, ...] = Field(min_length=1)
    # Public URL of the RFC 9728 document, for WWW-Authenticate on 401.
    resource_metadata_url: str = Field(pattern=r"^https?://")
    upstream_credential: UpstreamCredential | None = None
    identity_headers: IdentityHeaders = IdentityHeaders()
    token_cache_size: int = Field(default=10_000, ge=0)
    max_batch_size: int = Field(default=32, ge=1, le=1000)
    # CEL cannot bind input nested much deeper; MCP arguments rarely pass 5 levels.
    max_json_depth: int = Field(default=32, ge=4, le=32)
    max_token_bytes: int = Field(default=16_384, ge=256)

    @field_validator("issuers")
    @classmethod
    def _unique_issuers(cls, issuers: tuple[IssuerConfig, ...]) -> tuple[IssuerConfig, ...]:
        names = [i.issuer for i in issuers]
        if len(set(names)) != len(names):
            raise ValueError("each issuer may be configured once")
        return issuers


def load_config(path: str | Path) -> AuthzConfig:
    path = Path(path)
    return _relative_to(load_model(path, AuthzConfig), path.parent)


def _relative_to(config: AuthzConfig, base: Path) -> AuthzConfig:
    """Relative paths in the file are relative to the file, not to the working directory."""
    updates: dict[str, object] = {}
    if not config.policy.is_absolute():
        updates["policy"] = base / config.policy
    credential = config.upstream_credential
    if credential is not None and credential.file is not None and not credential.file.is_absolute():
        updates["upstream_credential"] = credential.model_copy(
            update={"file": base / credential.file}
        )
    return config.model_copy(update=updates)
