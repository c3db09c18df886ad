"""A request's target (`:path`, query included) as logs and audit records may keep it, and
the query parameters that carry a credential.

MCP forbids access tokens in the query string: a token there is written into every access
log on its way, and an audit record is kept six years and cannot be deleted. So a target
is kept with its parameters by name and their values redacted, but for parameters an
operator allow-lists; and a request with a credential in its query is refused."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import parse_qsl, unquote_plus

import jwt

REDACTED = "[REDACTED]"
_LONGEST_NAME = 64  # a longer "name" is no parameter's: kept, it could carry anything

# Names under which clients and OAuth flows send secrets, compared casefolded with "-" as
# "_": a name holding one of the stems ("access_token", "client_secret", "x_api_key"), or
# one of the names (a code to trade for a token, a signature).
_CREDENTIAL_STEMS = ("token", "secret", "passw", "api_key", "apikey", "credential", "bearer")
_CREDENTIAL_NAMES = frozenset(
    {"code", "key", "assertion", "auth", "authorization", "jwt", "sig", "signature", "session"}
)
_SAID = _CREDENTIAL_NAMES | {
    *("access_token", "id_token", "refresh_token", "token", "client_secret", "api_key"),
    *("apikey", "password"),
}


def credentials_in_query(target: str) -> list[str]:
    """What in the query carries a credential, said so that it is safe to log: a usual
    name as such ("access_token"), any other as "a credential's name", and a value or a
    bare parameter that parses as a JWT as "a JWT". Never the request's own text."""
    found: list[str] = []
    for name, value in _parameters(target):
        normal = _normal(name)
        if normal in _CREDENTIAL_NAMES or any(stem in normal for stem in _CREDENTIAL_STEMS):
            found.append(normal if normal in _SAID else "a credential's name")
        elif _is_jwt(value) or _is_jwt(name):
            found.append("a JWT")
    return found


def kept_target(target: str, kept: Collection[str] = ()) -> str:
    """`target` with each query parameter's value redacted, but those of the names in
    `kept`; a parameter without "=" is all value, and goes whole, as does a name too long
    to be one."""
    path, mark, query = target.partition("?")
    if not mark:
        return target
    parts = []
    for part in query.split("&"):
        if not part:
            continue
        name, equals, _ = part.partition("=")
        if not equals or len(name) > _LONGEST_NAME or _is_jwt(unquote_plus(name)):
            parts.append(REDACTED)
        elif unquote_plus(name) in kept:
            parts.append(part)
        else:
            parts.append(f"{name}={REDACTED}")
    return f"{path}?{'&'.join(parts)}"


def kept_query(target: str, kept: Collection[str] = ()) -> str:
    """The query of `kept_target`, without the path: what the access log shows."""
    return kept_target(target, kept).partition("?")[2]


def _parameters(target: str) -> list[tuple[str, str]]:
    query = target.partition("?")[2]
    return parse_qsl(query, keep_blank_values=True) if query else []


def _normal(name: str) -> str:
    return name.strip().casefold().replace("-", "_")


def _is_jwt(value: str) -> bool:
    """Whether `value` is a compact JWS: three base64url parts, the first a JSON header."""
    if value.count(".") != 2 or len(value) < 16:
        return False
    try:
        jwt.get_unverified_header(value)
    except jwt.PyJWTError:
        return False
    return True
