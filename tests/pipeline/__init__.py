"""The ext_authz pipeline end to end, in-process, without Envoy.

Every object is the real one: the development OIDC issuer served over HTTP on loopback,
an `httpx.AsyncClient` fetching its discovery document and JWKS, `IssuerKeys`,
`TokenVerifier`, `TokenCache`, a `PolicyReloader` on the example policy, `CredentialSource`
and `ResponseBuilder`. Verdicts are captured through `on_verdict`, the hook the metrics
hang on, so the tests see exactly what would be recorded.

Assertions are made on the protobuf fields Envoy acts on (status, headers to set and
remove, the denial's HTTP status, headers and body, dynamic metadata), because a field
set wrong there is a request Envoy forwards or refuses wrongly."""
