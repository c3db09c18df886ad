"""How Cloud Logging spells its resources. Provisioning builds these names and the emulator
parses them, so both agree on one spelling (a sink whose destination differs by a
character from the bucket's name routes nothing)."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

LOGGING_SERVICE = "logging.googleapis.com"

# The Logging API's rule for a LOG_ID once URL-decoded: under 512 characters of letters,
# digits, '/', '_', '-' and '.'. In a log name it is URL-encoded ('/' becomes %2F).
_LOG_ID = re.compile(r"[A-Za-z0-9/_.\-]{1,511}")
_ENCODED_LOG_ID = re.compile(r"(?:[A-Za-z0-9_.\-]|%[0-9A-Fa-f]{2})+")
# One path segment: the emulator is loose about project ids (any non-empty segment); the
# real API answers a malformed one with an error of its own.
_SEGMENT = r"([^/]+)"
_LOG_NAME = re.compile(rf"projects/{_SEGMENT}/logs/{_SEGMENT}")
_PROJECT = re.compile(rf"projects/{_SEGMENT}")
_LOCATION = re.compile(rf"projects/{_SEGMENT}/locations/{_SEGMENT}")
_BUCKET = re.compile(rf"projects/{_SEGMENT}/locations/{_SEGMENT}/buckets/{_SEGMENT}")
_SINK = re.compile(rf"projects/{_SEGMENT}/sinks/{_SEGMENT}")
_BUCKET_DESTINATION = re.compile(
    rf"{re.escape(LOGGING_SERVICE)}/projects/{_SEGMENT}/locations/{_SEGMENT}/buckets/{_SEGMENT}"
)


def log_id_problem(log_id: str) -> str | None:
    """Why `log_id` (decoded, as an operator types it) cannot name a log, or None."""
    if _LOG_ID.fullmatch(log_id):
        return None
    return f"log name {log_id!r}: 1 to 511 letters, digits, '/', '_', '-' or '.' only"


def project_path(project: str) -> str:
    return f"projects/{project}"


def log_path(project: str, log_id: str) -> str:
    return f"projects/{project}/logs/{quote(log_id, safe='')}"


def location_path(project: str, location: str) -> str:
    return f"projects/{project}/locations/{location}"


def bucket_path(project: str, location: str, bucket: str) -> str:
    return f"{location_path(project, location)}/buckets/{bucket}"


def sink_path(project: str, sink: str) -> str:
    return f"projects/{project}/sinks/{sink}"


def bucket_destination(project: str, location: str, bucket: str) -> str:
    """A sink's destination when it routes into a log bucket."""
    return f"{LOGGING_SERVICE}/{bucket_path(project, location, bucket)}"


def log_filter(project: str, log_id: str) -> str:
    """The sink filter that selects exactly one log."""
    return f'logName="{log_path(project, log_id)}"'


def parse_log_path(name: str) -> tuple[str, str]:
    """(project, decoded log id) of `projects/P/logs/L`; ValueError naming the problem."""
    match = _LOG_NAME.fullmatch(name)
    if not match:
        raise ValueError(f"log name {name!r} is not projects/[PROJECT_ID]/logs/[LOG_ID]")
    project, encoded = match.groups()
    if not _ENCODED_LOG_ID.fullmatch(encoded):
        raise ValueError(f"log name {name!r}: [LOG_ID] must be URL-encoded")
    log_id = unquote(encoded)
    problem = log_id_problem(log_id)
    if problem:
        raise ValueError(problem)
    return project, log_id


def parse_project_path(name: str) -> str:
    return _groups(_PROJECT, name, "projects/[PROJECT_ID]")[0]


def parse_location_path(name: str) -> tuple[str, str]:
    project, location = _groups(_LOCATION, name, "projects/[PROJECT_ID]/locations/[LOCATION]")
    return project, location


def parse_bucket_path(name: str) -> tuple[str, str, str]:
    project, location, bucket = _groups(
        _BUCKET, name, "projects/[PROJECT_ID]/locations/[LOCATION]/buckets/[BUCKET_ID]"
    )
    return project, location, bucket


def parse_sink_path(name: str) -> tuple[str, str]:
    project, sink = _groups(_SINK, name, "projects/[PROJECT_ID]/sinks/[SINK_ID]")
    return project, sink


def destination_bucket(destination: str) -> str | None:
    """The bucket path a sink destination names, or None if it is not a log bucket."""
    match = _BUCKET_DESTINATION.fullmatch(destination)
    return bucket_path(*match.groups()) if match else None


def _groups(pattern: re.Pattern[str], name: str, shape: str) -> tuple[str, ...]:
    match = pattern.fullmatch(name)
    if not match:
        raise ValueError(f"{name!r} is not {shape}")
    return match.groups()
