"""One exception tree for Custos. Every class has a stable ``code``, used as a
metric label and in audit records; messages never carry token contents or PHI."""

from __future__ import annotations


class CustosError(Exception):
    code = "custos_error"


class LimitExceeded(CustosError):
    """Something is bigger than a configured limit allows. Its message names the limit and
    holds nothing else, so the client may be told it: what to ask for instead, or which
    setting an operator would raise."""

    code = "limit_exceeded"


class ConfigError(CustosError):
    """A configuration file is missing, malformed or invalid."""

    code = "config_invalid"


class PolicyError(ConfigError):
    """A policy file or one of its rules does not load."""

    code = "policy_invalid"


class StackError(CustosError):
    """A process of the local stack did not start."""

    code = "stack_failed"


class CloudLoggingError(CustosError):
    """Cloud Logging refused a call, could not be reached, or no credentials were found."""

    code = "cloud_logging_failed"


class ProvisionRefused(CloudLoggingError):
    """`custos logging provision` will not do what was asked (short retention, a locked
    bucket with other retention); nothing has been changed when it is raised."""

    code = "logging_provision_refused"
