"""The ext_proc service: PHI masked out of every MCP answer (and, where configured, out of
requests) before it goes on, streamed answers included; each exchange recorded for audit."""
