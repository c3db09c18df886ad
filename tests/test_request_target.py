"""A request's target as logs and records keep it, and the credentials its query may carry:
refused by ext_authz, and never kept whole anywhere."""

from __future__ import annotations

from urllib.parse import urlencode

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from custos.request_target import REDACTED, credentials_in_query, kept_query, kept_target

TOKEN = jwt.encode({"sub": "alice"}, "k" * 32, algorithm="HS256")


@pytest.mark.parametrize(
    ("target", "found"),
    [
        ("/mcp", []),
        ("/mcp?page=2&sort=name", []),
        ("/mcp?access_token=opaque-123", ["access_token"]),
        ("/mcp?Access-Token=x&ID_TOKEN=y", ["access_token", "id_token"]),
        ("/mcp?code=4/0Ad&state=z", ["code"]),
        ("/mcp?x_api_key=k&client_secret=s", ["a credential's name", "client_secret"]),
        ("/mcp?access%5Ftoken=encoded", ["access_token"]),
        (f"/mcp?q={TOKEN}", ["a JWT"]),
        (f"/mcp?{TOKEN}", ["a JWT"]),
        ("/mcp?my_token_for_Ada_Okafor=1", ["a credential's name"]),
        ("/mcp?version=1.2.3", []),  # dotted, but no JWT
    ],
)
def test_credentials_are_found_by_name_or_by_a_value_that_is_a_jwt(
    target: str, found: list[str]
) -> None:
    assert credentials_in_query(target) == found


@pytest.mark.parametrize(
    "target",
    [
        "/mcp?x=1;access_token=SECRET",  # ";" separates parameters for some servers
        f"/mcp?x=Bearer%20{TOKEN}",
        "/mcp?x=Bearer%20opaque-123",
        f"/mcp?x=%22{TOKEN}%22",
        f"/mcp?x={TOKEN}%20",
        f"/mcp?next=/cb%3Faccess_token%3D{TOKEN}",
        f"/mcp?x={TOKEN.replace('.', '%252E')}",  # its dots encoded twice
        "/mcp?access%255Ftoken=1",
        "/mcp?x=%25252525252541",  # still changing after four decodings: refused
        *(f"/mcp?{name}=v" for name in ("client_assertion", "code_verifier", "session_id")),
        *(f"/mcp?{name}=v" for name in ("sid", "X-Amz-Signature", "access_key", "pwd", "otp")),
    ],
)
def test_a_credential_is_found_however_the_query_hides_it(target: str) -> None:
    assert credentials_in_query(target)


def test_allow_listed_values_never_keep_a_credential_or_another_parameter() -> None:
    for value in (TOKEN, f"Bearer%20{TOKEN}", "abc%3Baccess_token%3DSECRET", "a%3Db"):
        assert kept_target(f"/mcp?cursor={value}", {"cursor"}) == f"/mcp?cursor={REDACTED}"
    split = kept_target("/mcp?cursor=abc;access_token=SECRET", {"cursor"})
    assert split == f"/mcp?cursor=abc&access_token={REDACTED}"


def test_what_is_said_of_a_credential_never_repeats_the_request() -> None:
    said = " ".join(credentials_in_query(f"/mcp?{TOKEN}&my_token_Ada=1&q={TOKEN}"))
    assert TOKEN not in said and "Ada" not in said


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/mcp", "/mcp"),
        ("/mcp?", "/mcp?"),
        ("/mcp?page=2&patient=Ada+Okafor", f"/mcp?page={REDACTED}&patient={REDACTED}"),
        ("/mcp?bare&x=", f"/mcp?{REDACTED}&x={REDACTED}"),
        (f"/mcp?{TOKEN}=1", f"/mcp?{REDACTED}"),
        ("/mcp?" + "n" * 65 + "=1", f"/mcp?{REDACTED}"),
        ("/mcp?a=1&&b=2", f"/mcp?a={REDACTED}&b={REDACTED}"),
    ],
)
def test_a_kept_target_has_the_names_never_the_values(target: str, kept: str) -> None:
    assert kept_target(target) == kept


def test_allow_listed_values_are_kept() -> None:
    assert kept_target("/mcp?page=2&q=Ada", {"page"}) == f"/mcp?page=2&q={REDACTED}"
    assert kept_query("/mcp?page=2&q=Ada", {"page"}) == f"page=2&q={REDACTED}"


@given(st.lists(st.tuples(st.text(max_size=70), st.text(max_size=20)), max_size=5))
def test_every_parameter_of_a_kept_target_is_a_name_and_a_redacted_value(
    pairs: list[tuple[str, str]],
) -> None:
    target = "/mcp?" + urlencode(pairs)
    query = kept_target(target).removeprefix("/mcp?")
    for part in filter(None, query.split("&")):
        assert part == REDACTED or part.endswith(f"={REDACTED}")
        assert part.count("=") <= 1


def test_a_kept_target_is_bounded_and_keeps_no_credential_in_its_path() -> None:
    assert kept_target(f"/api/{TOKEN}/x?a=1") == f"/{REDACTED}?a={REDACTED}"
    assert kept_target(f"/api/{TOKEN}") == f"/{REDACTED}"
    many = kept_target("/x?" + ";".join("a" for _ in range(2000)))
    assert len(many) <= 1024 + len("[…]") and many.endswith("[…]")
    long_path = kept_target("/" + "p" * 5000)
    assert len(long_path) == 1024 + len("[…]")
