"""A development OIDC issuer for the local stack and the tests. NOT FOR PRODUCTION.

It serves the real protocol (discovery document and JWKS over HTTP), so ext_authz talks
to it exactly as to Google, Okta or Keycloak. It also mints tokens on request, which no
real IdP does for anyone who asks: it binds loopback only. A fresh RSA key is generated
at every start and lives only in memory."""

from __future__ import annotations

import base64
import ipaddress
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEFAULT_AUDIENCE = "custos-local"


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(uuid.uuid4().hex[:16], rsa.generate_private_key(65537, 2048))

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
        }


@dataclass
class DevIssuer:
    issuer: str
    audience: str = DEFAULT_AUDIENCE
    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey.generate()])
    published: bool = True  # False: the JWKS endpoint answers 503, as an IdP outage would

    @property
    def current(self) -> SigningKey:
        return self.keys[-1]

    def rotate(self) -> SigningKey:
        """A new signing key, published beside the old ones."""
        key = SigningKey.generate()
        self.keys.append(key)
        return key

    def mint(
        self,
        subject: str,
        groups: list[str] | tuple[str, ...] = (),
        *,
        email: str | None = None,
        audience: str | list[str] | None = None,
        expires_in: int = 3600,
        not_before: int | None = None,
        extra: dict[str, Any] | None = None,
        key: SigningKey | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience or self.audience,
            "iat": now,
            "exp": now + expires_in,
            "groups": list(groups),
            "email": email or f"{subject}@example.com",
        }
        if not_before is not None:
            claims["nbf"] = now + not_before
        claims.update(extra or {})
        signer = key or self.current
        return jwt.encode(claims, signer.private, algorithm="RS256", headers={"kid": signer.kid})

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks",
            "token_endpoint": f"{self.issuer}/token",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in self.keys]}

    def app(self) -> Starlette:
        async def discovery(_: Request) -> Response:
            return JSONResponse(self.discovery())

        async def jwks(_: Request) -> Response:
            if not self.published:
                return JSONResponse({"error": "unavailable"}, status_code=503)
            return JSONResponse(self.jwks())

        async def token(request: Request) -> Response:
            if not _is_loopback(request.client.host if request.client else ""):
                return JSONResponse({"error": "loopback only"}, status_code=403)
            try:
                ask = orjson.loads(await request.body() or b"{}")
                minted = self.mint(
                    str(ask["sub"]),
                    [str(g) for g in ask.get("groups", [])],
                    email=ask.get("email"),
                    audience=ask.get("aud"),
                    expires_in=int(ask.get("expires_in", 3600)),
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                return JSONResponse({"error": "send JSON with at least 'sub'"}, status_code=400)
            return JSONResponse({"access_token": minted, "token_type": "Bearer"})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
                Route("/token", token, methods=["POST"]),
            ]
        )


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
