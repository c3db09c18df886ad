"""The emulator's log buckets and sinks: the ConfigServiceV2 methods Custos uses, over
plain protobuf messages, no gRPC here.

Every project starts with the `_Default` and `_Required` buckets and sinks a real project
has, so listing and checking code meets what it will meet in Google Cloud. The rules kept
from the real API: NOT_FOUND and ALREADY_EXISTS by name; an update names its fields in
a mask; a locked bucket refuses any change to `retention_days` or `locked`
(FAILED_PRECONDITION); retention is 1 to 3650 days; a sink into a log bucket of its own
project has no writer identity, any other sink gets a service account; an update with
`exclusions` in its mask replaces the sink's whole list (a field in the mask is
overwritten), and each exclusion needs a valid name and a filter."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable
from typing import Any

import grpc
from google.cloud.logging_v2.types import (
    LifecycleState,
    ListBucketsResponse,
    ListSinksResponse,
    LogBucket,
    LogSink,
)
from google.protobuf import field_mask_pb2

from custos.cloud_logging import paging
from custos.cloud_logging.api_error import ApiError, invalid, not_found
from custos.cloud_logging.resource_names import (
    bucket_destination,
    bucket_path,
    destination_bucket,
    parse_bucket_path,
    parse_location_path,
    parse_project_path,
    parse_sink_path,
    sink_path,
)

MIN_RETENTION_DAYS, MAX_RETENTION_DAYS = 1, 3650
DEFAULT_RETENTION_DAYS = 30
BUCKET_FIELDS = {
    "description",
    "retention_days",
    "locked",
    "restricted_fields",
    "index_configs",
    "analytics_enabled",
}
SINK_FIELDS = {
    "destination",
    "filter",
    "description",
    "disabled",
    "exclusions",
    "include_children",
    "bigquery_options",
    "output_version_format",
}
SINK_DEFAULT_MASK = ("destination", "filter", "include_children")  # the API's, when none
DESTINATION_PREFIXES = (
    "logging.googleapis.com/projects/",
    "storage.googleapis.com/",
    "bigquery.googleapis.com/projects/",
    "pubsub.googleapis.com/projects/",
)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
# The logs Google routes to _Required (and so keeps out of _Default) in every project.
_REQUIRED_LOGS = tuple(
    f"{service}.googleapis.com/{log}"
    for log in ("activity", "system_event", "access_transparency")
    for service in ("cloudaudit", "externalaudit")
)

_BucketPb: Any = LogBucket.pb()
_SinkPb: Any = LogSink.pb()
_ListBucketsPb: Any = ListBucketsResponse.pb()
_ListSinksPb: Any = ListSinksResponse.pb()


class ConfigStore:
    def __init__(self) -> None:
        # Written on gRPC worker threads, read on the test's thread.
        self._lock = threading.Lock()
        self._projects: set[str] = set()
        self._buckets: dict[str, Any] = {}
        self._sinks: dict[str, Any] = {}
        self._unique_writers: set[str] = set()  # sinks created with unique_writer_identity

    def get_bucket(self, request: Any) -> Any:
        with self._lock:
            return _copy(self._bucket(request.name))

    def create_bucket(self, request: Any) -> Any:
        project, location = _parse(parse_location_path, request.parent)
        _check_id("bucket_id", request.bucket_id)
        name = bucket_path(project, location, request.bucket_id)
        bucket = _copy(request.bucket)
        bucket.name = name
        bucket.retention_days = bucket.retention_days or DEFAULT_RETENTION_DAYS
        _check_retention(bucket.retention_days)
        bucket.lifecycle_state = LifecycleState.ACTIVE
        bucket.create_time.GetCurrentTime()
        bucket.update_time.CopyFrom(bucket.create_time)
        with self._lock:
            self._project(project)
            if name in self._buckets:
                raise ApiError(grpc.StatusCode.ALREADY_EXISTS, f"Bucket {name} already exists")
            self._buckets[name] = bucket
            return _copy(bucket)

    def update_bucket(self, request: Any) -> Any:
        paths = _mask(request.update_mask.paths, BUCKET_FIELDS, ())
        if "retention_days" in paths:
            _check_retention(request.bucket.retention_days)
        with self._lock:
            stored = self._bucket(request.name)
            if stored.locked and paths & {"retention_days", "locked"}:
                raise ApiError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Bucket {request.name} is locked: its retention_days and locked "
                    "cannot be changed",
                )
            _merge(request.bucket, stored, paths)
            stored.update_time.GetCurrentTime()
            return _copy(stored)

    def list_buckets(self, request: Any) -> Any:
        project, location = _parse(parse_location_path, request.parent)
        prefix = f"projects/{project}/locations/"
        with self._lock:
            self._project(project)
            found = [
                _copy(bucket)
                for name, bucket in sorted(self._buckets.items())
                if name.startswith(prefix) and location in ("-", parse_bucket_path(name)[1])
            ]
        page, token = _page(found, request)
        return _ListBucketsPb(buckets=page, next_page_token=token)

    def get_sink(self, request: Any) -> Any:
        with self._lock:
            return _copy(self._sink(request.sink_name))

    def create_sink(self, request: Any) -> Any:
        project = _parse(parse_project_path, request.parent)
        sink = _copy(request.sink)
        _check_id("sink name", sink.name)
        _check_destination(sink.destination)
        _check_exclusions(sink.exclusions)
        name = sink_path(project, sink.name)
        sink.create_time.GetCurrentTime()
        sink.update_time.CopyFrom(sink.create_time)
        with self._lock:
            self._project(project)
            if name in self._sinks:
                raise ApiError(grpc.StatusCode.ALREADY_EXISTS, f"Sink {sink.name} already exists")
            if request.unique_writer_identity:
                self._unique_writers.add(name)
            sink.writer_identity = self._writer_identity(name, sink.destination)
            self._sinks[name] = sink
            return _copy(sink)

    def update_sink(self, request: Any) -> Any:
        paths = _mask(request.update_mask.paths, SINK_FIELDS, SINK_DEFAULT_MASK)
        if "destination" in paths:
            _check_destination(request.sink.destination)
        if "exclusions" in paths:
            _check_exclusions(request.sink.exclusions)
        with self._lock:
            stored = self._sink(request.sink_name)
            unique = request.sink_name in self._unique_writers
            if unique and not request.unique_writer_identity:
                raise invalid("unique_writer_identity cannot change from true to false")
            if request.unique_writer_identity:
                self._unique_writers.add(request.sink_name)
            _merge(request.sink, stored, paths)
            stored.writer_identity = self._writer_identity(request.sink_name, stored.destination)
            stored.update_time.GetCurrentTime()
            return _copy(stored)

    def list_sinks(self, request: Any) -> Any:
        project = _parse(parse_project_path, request.parent)
        prefix = f"projects/{project}/sinks/"
        with self._lock:
            self._project(project)
            found = [_copy(s) for n, s in sorted(self._sinks.items()) if n.startswith(prefix)]
        page, token = _page(found, request)
        return _ListSinksPb(sinks=page, next_page_token=token)

    def _bucket(self, name: str) -> Any:
        project, _, _ = _parse(parse_bucket_path, name)
        self._project(project)
        if name not in self._buckets:
            raise not_found(f"Bucket {name} does not exist")
        return self._buckets[name]

    def _sink(self, name: str) -> Any:
        project, sink = _parse(parse_sink_path, name)
        self._project(project)
        if name not in self._sinks:
            raise not_found(f"Sink {sink} does not exist")
        return self._sinks[name]

    def _project(self, project: str) -> None:
        """Give a project, the first time it is named, the buckets and sinks Google makes."""
        if project in self._projects:
            return
        self._projects.add(project)
        required = " OR ".join(f'LOG_ID("{log}")' for log in _REQUIRED_LOGS)
        default = " AND ".join(f'NOT LOG_ID("{log}")' for log in _REQUIRED_LOGS)
        for bucket_id, days, locked, log_filter in (
            ("_Required", 400, True, required),
            ("_Default", DEFAULT_RETENTION_DAYS, False, default),
        ):
            name = bucket_path(project, "global", bucket_id)
            self._buckets[name] = _BucketPb(
                name=name,
                retention_days=days,
                locked=locked,
                lifecycle_state=LifecycleState.ACTIVE,
            )
            self._sinks[sink_path(project, bucket_id)] = _SinkPb(
                name=bucket_id,
                destination=bucket_destination(project, "global", bucket_id),
                filter=log_filter,
            )

    def _writer_identity(self, name: str, destination: str) -> str:
        project, _ = parse_sink_path(name)
        target = destination_bucket(destination)
        if target and parse_bucket_path(target)[0] == project:
            return ""  # "Sinks [into] a log bucket in the same project ... cannot have" one
        if name in self._unique_writers:
            number = int(hashlib.sha256(project.encode()).hexdigest(), 16) % 10**12
            return f"serviceAccount:service-{number:012d}@gcp-sa-logging.iam.gserviceaccount.com"
        return "serviceAccount:cloud-logs@system.gserviceaccount.com"


def _parse(parser: Any, name: str) -> Any:
    try:
        return parser(name)
    except ValueError as exc:
        raise invalid(str(exc)) from exc


def _check_id(what: str, value: str) -> None:
    """A bucket id, sink name or exclusion name: the API holds all three to one rule."""
    if not _ID.fullmatch(value):
        raise invalid(
            f"{what} {value!r}: up to 100 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )


def _check_retention(days: int) -> None:
    if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise invalid(
            f"retention_days must be between {MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS}"
        )


def _check_destination(destination: str) -> None:
    if not destination.startswith(DESTINATION_PREFIXES):
        raise invalid(f"sink destination {destination!r} is not a supported destination")
    if destination.startswith("logging.googleapis.com/") and not (
        destination_bucket(destination)
        or re.fullmatch(r"logging\.googleapis\.com/projects/[^/]+", destination)
    ):
        raise invalid(f"sink destination {destination!r} is not a log bucket or a project")


def _check_exclusions(exclusions: Iterable[Any]) -> None:
    # LogExclusion: a name of up to 100 letters, digits, '_', '-' or '.' starting with
    # a letter or digit, and a filter, are required.
    for exclusion in exclusions:
        _check_id("exclusion name", exclusion.name)
        if not exclusion.filter.strip():
            raise invalid(f"exclusion {exclusion.name}: a filter is required")


def _mask(paths: Iterable[str], allowed: set[str], default: tuple[str, ...]) -> set[str]:
    """The snake_case fields an update names (the API takes camelCase too)."""
    fields = {re.sub(r"[A-Z]", lambda c: "_" + c.group().lower(), p) for p in paths}
    if not fields and not default:
        raise invalid("update_mask: at least one field is required")
    unknown = fields - allowed
    if unknown:
        raise invalid(f"update_mask: cannot update {', '.join(sorted(unknown))}")
    return fields or set(default)


def _merge(source: Any, target: Any, paths: set[str]) -> None:
    field_mask_pb2.FieldMask(paths=sorted(paths)).MergeMessage(source, target, True, True)


def _page(items: list[Any], request: Any) -> tuple[list[Any], str]:
    size = request.page_size if request.page_size > 0 else len(items) or 1
    return paging.page(items, size, request.page_token, request.parent)


def _copy(message: Any) -> Any:
    copy = type(message)()
    copy.CopyFrom(message)
    return copy
