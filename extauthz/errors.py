"""Why a request was refused, one class per cause. `code` is stable: it labels metrics
and lands in the audit record. Messages are safe to log: no token contents, no PHI."""

from __future__ import annotations

from custos.errors import CustosError


class AuthzError(CustosError):
    code = "authz_error"
    http_status = 500  # what the client is answered


class TokenError(AuthzError):
    """The bearer token is missing or does not verify: the answer is 401."""

    code = "token_invalid"
    http_status = 401


class TokenMissing(TokenError):
    code = "token_missing"


class TokenMalformed(TokenError):
    code = "token_malformed"


class UnknownIssuer(TokenError):
    code = "issuer_unknown"


class AlgorithmNotAllowed(TokenError):
    code = "algorithm_not_allowed"


class UnknownKey(TokenError):
    code = "key_unknown"


class SignatureInvalid(TokenError):
    code = "signature_invalid"


class TokenExpired(TokenError):
    code = "token_expired"


class TokenNotYetValid(TokenError):
    code = "token_not_yet_valid"


class AudienceMismatch(TokenError):
    code = "audience_mismatch"


class ClaimInvalid(TokenError):
    code = "claim_invalid"


class KeysUnavailable(AuthzError):
    """No key could be had: the IdP is unreachable and nothing is cached. Not the
    token's fault, so not 401: a client would throw a good token away."""

    code = "keys_unavailable"
    http_status = 503


class CredentialInQuery(AuthzError):
    """A token, or any credential, in the query string: MCP forbids it, since every log on
    the way writes it down. Refused before it is looked at, and never forwarded."""

    code = "credential_in_query"
    http_status = 400
    jsonrpc_code = -32600


class McpRequestInvalid(AuthzError):
    """The body is not valid JSON-RPC 2.0 / MCP: the answer is 400."""

    code = "mcp_request_invalid"
    http_status = 400

    def __init__(self, message: str, jsonrpc_code: int = -32600) -> None:
        super().__init__(message)
        self.jsonrpc_code = jsonrpc_code


class McpHeaderMismatch(McpRequestInvalid):
    code = "mcp_header_mismatch"
