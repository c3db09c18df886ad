"""The ext_authz pipeline, in the order it runs:

0. target — no credential in the query string (else 400);
1. identity — the bearer token must verify (else 401);
2. MCP request — the body must be JSON-RPC that agrees with its headers (else 400);
3. policy — every call must be allowed by the CEL rules (else 403);
4. response — built from the verdict by `extauthz.response`.

Each phase is a plain module; this one only orders them and records the outcome."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from custos.errors import ConfigError, CustosError
from custos.policy import Decision, HttpRequest, Identity, PolicyInput, decide
from custos.policy.reloader import PolicyReloader
from custos.request_target import credentials_in_query, kept_query
from extauthz.errors import AuthzError, CredentialInQuery, McpRequestInvalid
from extauthz.identity import TokenVerifier, bearer_token
from extauthz.mcp_request import (
    DEFAULT_LIMITS,
    NO_BODY,
    McpLimits,
    McpRequest,
    check_headers,
    parse_body,
)
from extauthz.upstream_credential import CredentialSource

log = logging.getLogger(__name__)

# Decision ids must be unique, not secret: a generator seeded once from the OS is enough,
# and a system call per request for randomness is not.
_ids = random.Random()

# Bodiless MCP traffic: GET opens the server's SSE stream, DELETE ends a session.
_BODILESS_METHODS = frozenset({"GET", "DELETE", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Verdict:
    decision_id: str
    status: int  # 200 allow; 400, 401, 403, 500 or 503 deny
    code: str  # "allow", "deny" or the error's stable code
    reason: str  # safe to log: no token, no PHI
    identity: Identity | None = None
    mcp: McpRequest = NO_BODY
    decision: Decision | None = None
    policy_digest: str = ""
    error: CustosError | None = None
    # The header value that replaces the client's token upstream; never logged.
    upstream_credential: str = field(default="", repr=False)
    request_id: str = ""  # Envoy's x-request-id: links access log, decision and audit
    source_address: str = ""
    query: str = ""  # the query string's parameter names, their values redacted
    elapsed: float = field(default=0.0, compare=False)

    @property
    def allowed(self) -> bool:
        return self.status == 200

    @property
    def rule(self) -> str:
        return self.decision.rule if self.decision else ""


VerdictListener = Callable[[Verdict], None]


class Authorizer:
    def __init__(
        self,
        verifier: TokenVerifier,
        policy: PolicyReloader,
        max_token_bytes: int,
        limits: McpLimits = DEFAULT_LIMITS,
        credential: CredentialSource | None = None,
        on_verdict: VerdictListener | None = None,
    ) -> None:
        self._verifier = verifier
        self._policy = policy
        self._max_token_bytes = max_token_bytes
        self._limits = limits
        self._credential = credential
        self._on_verdict = on_verdict

    async def authorize(self, request: HttpRequest, body: bytes) -> Verdict:
        started = time.perf_counter()
        decision_id = f"{_ids.getrandbits(128):032x}"
        verdict = Verdict(decision_id, 503, "cancelled", "Envoy gave up waiting")
        try:
            verdict = await self._run(decision_id, request, body)
        except AuthzError as exc:
            verdict = Verdict(decision_id, exc.http_status, exc.code, str(exc), error=exc)
        except Exception as exc:  # a bug must deny, and must not leak data into logs
            log.error("authorization failed internally: %s", type(exc).__name__)
            verdict = Verdict(decision_id, 500, "internal_error", "internal error")
        finally:
            # Recorded even when Envoy cancels the call: every decision is counted.
            verdict = replace(
                verdict,
                elapsed=time.perf_counter() - started,
                request_id=request.id,
                source_address=request.source_address,
                query=kept_query(request.path),
            )
            if self._on_verdict is not None:
                self._on_verdict(verdict)
        return verdict

    async def _run(self, decision_id: str, request: HttpRequest, body: bytes) -> Verdict:
        if found := credentials_in_query(request.path):
            raise CredentialInQuery(
                f"a credential in the query string ({', '.join(found)}): MCP takes tokens in "
                "the Authorization header only"
            )
        identity = await self._verifier.verify(bearer_token(request.headers, self._max_token_bytes))
        try:
            mcp = _mcp_request(request, body, self._limits)
        except McpRequestInvalid as exc:
            return Verdict(decision_id, 400, exc.code, str(exc), identity, error=exc)
        policy = self._policy.policy
        visible = HttpRequest(
            method=request.method,
            path=request.path,
            headers={k: v for k, v in request.headers.items() if k != "authorization"},
            source_address=request.source_address,
            id=request.id,
        )
        decision = decide(policy, PolicyInput(identity, visible, mcp.calls, mcp.is_batch))
        credential = ""
        if decision.allowed and self._credential is not None:
            try:
                credential = self._credential.header_value()
            except ConfigError as exc:  # allowed, but the MCP server could not be called
                log.error("upstream credential unavailable: %s", exc)
                return Verdict(
                    decision_id,
                    500,
                    exc.code,
                    str(exc),
                    identity,
                    mcp,
                    decision,
                    policy.digest,
                    error=exc,
                )
        return Verdict(
            decision_id,
            200 if decision.allowed else 403,
            decision.effect,
            f"rule {decision.rule}",
            identity,
            mcp,
            decision,
            policy.digest,
            upstream_credential=credential,
        )


def _mcp_request(request: HttpRequest, body: bytes, limits: McpLimits) -> McpRequest:
    if request.method in _BODILESS_METHODS and not body:
        return NO_BODY
    if request.method != "POST":
        raise McpRequestInvalid(f"{request.method} with a body is not MCP")
    mcp = parse_body(body, limits)
    check_headers(mcp, request.headers)
    return mcp
