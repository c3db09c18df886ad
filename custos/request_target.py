"""A request's target (`:path`, query included) as logs and audit records may keep it, and
the query parameters that carry a credential.

MCP forbids access tokens in the query string: a token there is written into every access
log on its way, and an audit record is kept six years and cannot be deleted. So a target
is kept with its parameters by name and their values redacted, but for parameters an
operator allow-lists (and never a value that looks like a credential); and a request with
a credential in its query is refused.

A query is read as the most lenient server would read it: parameters split at "&" and at
";" (as Rack 2 and older Go did), values percent-decoded until they no longer change."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from urllib.parse import unquote_plus

import jwt

REDACTED = "[REDACTED]"
_LONGEST_NAME = 64  # a longer "name" is no parameter's: kept, it could carry anything
_MOST_PARAMETERS = 32  # beyond, parameters are not kept one by one
_LONGEST_TARGET = 1024  # beyond, a kept target is cut, and says so
_MORE = "[…]"
_DECODINGS = 4  # "%2525..." decoded this many times; a value still changing is redacted
_SEPARATORS = re.compile(r"[&;]")

# Names under which clients and OAuth flows send secrets, compared casefolded with "-" as
# "_": a name holding one of the stems ("access_token", "client_secret", "x_amz_signature",
# "code_verifier", "session_id"), or one of the names.
_CREDENTIAL_STEMS = (
    *("token", "secret", "passw", "pwd", "key", "credential", "bearer", "assertion"),
    *("verifier", "signature", "session"),
)
_CREDENTIAL_NAMES = frozenset({"code", "auth", "authorization", "jwt", "sig", "sid", "otp", "pass"})
_SAID = _CREDENTIAL_NAMES | {
    *("access_token", "id_token", "refresh_token", "token", "client_secret", "api_key"),
    *("apikey", "password", "key", "session", "signature"),
}
# A JWT's first part is base64url of a JSON object: "{" encodes as "ey".
_JWT_LIKE = re.compile(r"ey[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_STRUCTURED = re.compile(r"[;=?&]")


def credentials_in_query(target: str) -> list[str]:
    """What in the query carries a credential, said so that it is safe to log: a usual
    name as such ("access_token"), any other as "a credential's name", and a value or a
    bare parameter holding a JWT or a bearer token as "a JWT" or "a bearer token". Never
    the request's own text."""
    found: list[str] = []
    for name, value in _parameters(target):
        normal = _normal(name)
        if normal in _CREDENTIAL_NAMES or any(stem in normal for stem in _CREDENTIAL_STEMS):
            found.append(normal if normal in _SAID else "a credential's name")
        elif said := _credential_in(value) or _credential_in(name):
            found.append(said)
    return found


def kept_target(target: str, kept: Collection[str] = ()) -> str:
    """`target` with each query parameter's value redacted, but those of the names in
    `kept` that hold nothing like a credential or another parameter; a parameter without
    "=" is all value, and goes whole, as does a name too long to be one. A path that holds
    a credential goes whole too, and the whole is bounded: a record is kept six years, and
    a client must not make it large at will."""
    path, mark, query = target.partition("?")
    plain_path = _decoded(path)
    if plain_path is None or _credential_in(plain_path):
        path = f"/{REDACTED}"
    if not mark:
        return _bounded(path)
    parts = []
    for part in _SEPARATORS.split(query):
        if not part:
            continue
        if len(parts) == _MOST_PARAMETERS:
            parts.append(_MORE)
            break
        name, equals, value = part.partition("=")
        plain = _decoded(name)
        if not equals or len(name) > _LONGEST_NAME or plain is None or _credential_in(plain):
            parts.append(REDACTED)
        elif plain in kept and _harmless(value):
            parts.append(part)
        else:
            parts.append(f"{name}={REDACTED}")
    return _bounded(f"{path}?{'&'.join(parts)}")


def _bounded(target: str) -> str:
    return target if len(target) <= _LONGEST_TARGET else target[:_LONGEST_TARGET] + _MORE


def kept_query(target: str, kept: Collection[str] = ()) -> str:
    """The query of `kept_target`, without the path: what the access log shows."""
    return kept_target(target, kept).partition("?")[2]


def _parameters(target: str) -> Iterator[tuple[str, str]]:
    query = target.partition("?")[2]
    for part in _SEPARATORS.split(query):
        if part:
            name, _, value = part.partition("=")
            plain_name, plain_value = _decoded(name), _decoded(value)
            yield (
                REDACTED if plain_name is None else plain_name,
                REDACTED if plain_value is None else plain_value,
            )


def _decoded(text: str) -> str | None:
    """`text` percent-decoded until it no longer changes; None if it still does."""
    for _ in range(_DECODINGS):
        plain = unquote_plus(text)
        if plain == text:
            return plain
        text = plain
    return None


def _harmless(value: str) -> bool:
    """Whether an allow-listed value may be kept: plain text, no credential, no other
    parameter folded into it."""
    plain = _decoded(value)
    return plain is not None and not _credential_in(plain) and not _STRUCTURED.search(plain)


def _normal(name: str) -> str:
    return name.strip().casefold().replace("-", "_")


def _credential_in(text: str) -> str:
    """What credential `text` holds, if any: a JWT anywhere in it, or a bearer token."""
    if text == REDACTED:  # a value that would not stop changing when decoded
        return "an undecodable value"
    if text.strip().casefold().startswith("bearer "):
        return "a bearer token"
    for candidate in _JWT_LIKE.findall(text):
        try:
            jwt.get_unverified_header(candidate)
        except jwt.PyJWTError:
            continue
        return "a JWT"
    return ""
