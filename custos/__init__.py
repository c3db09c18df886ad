"""Custos: an Envoy sidecar that authorizes, masks and audits MCP traffic."""

__version__ = "0.1.0"
