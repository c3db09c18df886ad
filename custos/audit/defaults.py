"""Defaults that the commands, the configuration and the library share: one place, and
light to import (the CLI reads them before it knows which command runs)."""

from __future__ import annotations

# The audit log's id in Cloud Logging, and the sink and `_Default` exclusion named after it.
AUDIT_LOG = "custos-audit"
# HIPAA keeps documentation six years (45 CFR 164.316(b)(2)(i)): 6 x 365 days.
MIN_RETENTION_DAYS = 2190
# With --live: how long an open end may stay unsigned, next to the set's newest record
# (checkpoints come every 60 s with news by default).
MAX_UNSIGNED_SECONDS = 180.0
