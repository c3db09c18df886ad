"""The ext_proc service: PHI masking of MCP responses (built in a later issue)."""
