"""Audit evidence: hash-chained records, spooled durably, shipped to Cloud Logging."""
