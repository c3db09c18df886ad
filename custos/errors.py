"""One exception tree for Custos. Every class has a stable ``code``, used as a
metric label and in audit records; messages never carry token contents or PHI."""

from __future__ import annotations


class CustosError(Exception):
    code = "custos_error"


class ConfigError(CustosError):
    """A configuration file is missing, malformed or invalid."""

    code = "config_invalid"


class PolicyError(ConfigError):
    """A policy file or one of its rules does not load."""

    code = "policy_invalid"


class StackError(CustosError):
    """A process of the local stack did not start."""

    code = "stack_failed"
