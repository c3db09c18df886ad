"""The ext_authz gRPC service: OIDC identity, MCP request parsing, CEL policy, response."""
