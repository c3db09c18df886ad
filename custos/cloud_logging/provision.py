"""Provision and check the locked log bucket and the sink that keep Custos' audit records.

Plain functions over a ConfigServiceV2Client, returning dataclasses; `custos logging
provision|check` prints them. Provisioning is idempotent and conservative: it creates
what is missing, raises a retention that is too short, and refuses (ProvisionRefused,
before changing anything) what it must not touch: a locked bucket's retention, a
retention longer than asked, which it will not shorten, or an existing audit sink that
routes into another bucket (it may be what feeds a locked bucket now: a second run for
another location would move it away), unless `force_sink`.

Google's built-in `_Default` sink routes every log not sent to `_Required` into the
`_Default` bucket (30 days, unlocked, readable more widely), so without more the audit
records (exact MCP requests and responses, PHI among them) would be kept twice, once
under weaker controls. Provisioning therefore adds an exclusion for the audit log to
that sink (LogSink.exclusions, as `gcloud logging sinks update _Default
--add-exclusion` does), keeping its filter and its other exclusions; that needs
`logging.sinks.update` on `_Default`, which the role that may create the audit sink
(roles/logging.configWriter) has. `check` fails while `_Default` still copies the log.

Any other sink of the project may copy the log out of the locked bucket too (into
Cloud Storage, BigQuery, another bucket): `check` fails for each enabled one whose filter
it cannot show excludes the audit log, unless an active exclusion of it does, or the
operator vouches for it (`allow_sinks`). `_Required` only takes Google's own audit logs."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from google.api_core import exceptions as api_exceptions
from google.cloud.logging_v2.services.config_service_v2 import ConfigServiceV2Client
from google.cloud.logging_v2.types import LifecycleState, LogBucket, LogSink

from custos.audit.defaults import AUDIT_LOG, MIN_RETENTION_DAYS
from custos.cloud_logging import log_filter, resource_names
from custos.cloud_logging.resource_names import (
    bucket_destination,
    bucket_path,
    location_path,
    log_id_problem,
    log_path,
    parse_log_path,
    project_path,
    sink_path,
)
from custos.errors import CloudLoggingError, ProvisionRefused

__all__ = [
    "BUILTIN_DEFAULT_SINK",
    "AuditBucket",
    "CheckResult",
    "Outcome",
    "Provisioned",
    "Step",
    "check",
    "provision",
]

BUCKET_DESCRIPTION = "Custos audit records (hash-chained, locked retention)"
SINK_DESCRIPTION = "Routes Custos audit records into their locked log bucket"
BUILTIN_DEFAULT_SINK = "_Default"
BUILTIN_REQUIRED_SINK = "_Required"
EXCLUSION_DESCRIPTION = (
    "Keeps Custos audit records (exact MCP requests and responses) out of the _Default "
    "bucket: they are kept in their locked log bucket only"
)

T = TypeVar("T")


@dataclass(frozen=True)
class AuditBucket:
    """Where the audit records go: one log, routed into one bucket of the same project."""

    project: str
    location: str
    bucket: str
    log_name: str = AUDIT_LOG

    def __post_init__(self) -> None:
        problem = log_id_problem(self.log_name)
        if problem:
            raise CloudLoggingError(problem)

    @property
    def path(self) -> str:
        return bucket_path(self.project, self.location, self.bucket)

    @property
    def destination(self) -> str:
        return bucket_destination(self.project, self.location, self.bucket)

    @property
    def log_path(self) -> str:
        return log_path(self.project, self.log_name)

    @property
    def log_filter(self) -> str:
        return resource_names.log_filter(self.project, self.log_name)


class Outcome(StrEnum):
    CREATED = "created"
    UNCHANGED = "already there"
    UPDATED = "updated"
    NOT_ASKED = "not asked"


@dataclass(frozen=True)
class Step:
    outcome: Outcome
    detail: str


@dataclass(frozen=True)
class Provisioned:
    bucket: Step
    lock: Step
    sink: Step
    sink_path: str
    writer_identity: str  # "" when the API gives the sink none
    grant: str  # what the writer identity needs, in words
    default_copy: Step  # the exclusion that keeps the audit log out of _Default
    default_sink_path: str


@dataclass(frozen=True)
class CheckResult:
    target: AuditBucket
    required_days: int
    retention_days: int | None  # None: no such bucket
    locked: bool
    routing_sinks: tuple[str, ...]  # the sinks that route the audit log into the bucket
    problems: tuple[str, ...]
    default_copy: str = ""  # what _Default does with the audit log, in words
    warnings: tuple[str, ...] = ()  # allowed, but weakens the audit trail

    @property
    def ok(self) -> bool:
        return not self.problems


def _short_retention(retention_days: int, allowed: bool) -> str | None:
    """Why a retention is too short for audit records, unless short was allowed."""
    if retention_days >= MIN_RETENTION_DAYS or allowed:
        return None
    return (
        f"--retention-days {retention_days} is under the {MIN_RETENTION_DAYS} days (six "
        "years) audit records need; pass --allow-short-retention if this is not for "
        "production"
    )


def provision(
    client: ConfigServiceV2Client,
    target: AuditBucket,
    *,
    retention_days: int = MIN_RETENTION_DAYS,
    lock: bool = False,
    sink_name: str = AUDIT_LOG,
    allow_short_retention: bool = False,
    keep_default_copy: bool = False,
    force_sink: bool = False,
) -> Provisioned:
    """Make the bucket, its lock, the sink and the `_Default` exclusion what was asked;
    see the module docstring. The exclusion is named after the sink, so two deployments
    with their own sinks and logs in one project keep an exclusion each."""
    if short := _short_retention(retention_days, allow_short_retention):
        raise ProvisionRefused(short)
    # Read before the bucket is touched, so a refusal leaves nothing half done.
    existing = _read_sink(client, target.project, sink_name)
    if not force_sink:
        _refuse_re_pointing(existing, target, "nothing was changed")
    bucket_step, bucket = _ensure_bucket(client, target, retention_days)
    lock_step = _ensure_lock(client, target, bucket, lock)
    sink_step, sink = _ensure_sink(client, target, sink_name, existing, force_sink)
    # Only now that the audit sink routes the log into its bucket: an exclusion made
    # first would leave a window in which the log is stored nowhere.
    default_step = _ensure_default_exclusion(client, target, sink_name, keep_default_copy)
    return Provisioned(
        bucket=bucket_step,
        lock=lock_step,
        sink=sink_step,
        sink_path=sink_path(target.project, sink_name),
        writer_identity=sink.writer_identity,
        grant=_grant(sink.writer_identity),
        default_copy=default_step,
        default_sink_path=sink_path(target.project, BUILTIN_DEFAULT_SINK),
    )


def check(
    client: ConfigServiceV2Client,
    target: AuditBucket,
    *,
    retention_days: int = MIN_RETENTION_DAYS,
    allow_short_retention: bool = False,
    allow_default_copy: bool = False,
    allow_sinks: Collection[str] = (),
) -> CheckResult:
    """Every reason the bucket does not keep the audit log as required, or a sink keeps a
    copy of it elsewhere (none: all is as it must be). A `retention_days` under the
    six-year floor is itself a problem unless `allow_short_retention`, and the bucket is
    then held to the floor. `allow_default_copy` makes the `_Default` copy a warning
    instead of a problem, `allow_sinks` the copies of the sinks it names."""
    if BUILTIN_DEFAULT_SINK in allow_sinks:
        raise CloudLoggingError(
            f"--allow-sink does not cover {BUILTIN_DEFAULT_SINK}: its copy is allowed only "
            "by --allow-default-copy"
        )
    problems: list[str] = []
    required = retention_days
    if short := _short_retention(retention_days, allow_short_retention):
        # As provision refuses it: a check asked for less would pass a bucket too short.
        problems.append(short)
        required = MIN_RETENTION_DAYS
    bucket = _read_bucket(client, target)
    problems.extend(_bucket_problems(bucket, target, required))
    with _calling(f"listing the sinks of {project_path(target.project)}"):
        sinks = list(client.list_sinks(request={"parent": project_path(target.project)}))
    routing = tuple(sink.name for sink in sinks if not _why_not_routing(sink, target))
    explained: list[str] = []  # sinks already named for not routing, named once only
    if not routing:
        problems.append(f"no sink routes {target.log_filter} into {target.destination}")
        for sink in sinks:
            reason = _why_not_routing(sink, target)
            if reason and (
                sink.destination == target.destination or _names_log(sink.filter, target)
            ):
                problems.append(f"sink {sink.name}: {reason}")
                explained.append(sink.name)
    default = next((sink for sink in sinks if sink.name == BUILTIN_DEFAULT_SINK), None)
    default_copy, copied = _default_copy(default, target)
    warnings: list[str] = []
    if copied:
        problem = f"{default_copy}, outside the locked bucket: {copied}"
        if allow_default_copy:
            warnings.append(f"{problem} (allowed by --allow-default-copy)")
        else:
            problems.append(
                f"{problem}; add an exclusion with that filter to it (`custos logging "
                "provision` does) or pass --allow-default-copy"
            )
    others = [sink for sink in sinks if sink.name not in explained]
    _judge_other_copies(others, target, allow_sinks, problems, warnings)
    return CheckResult(
        target=target,
        required_days=required,
        retention_days=bucket.retention_days if bucket is not None else None,
        locked=bucket is not None and bucket.locked,
        routing_sinks=routing,
        problems=tuple(problems),
        default_copy=default_copy,
        warnings=tuple(warnings),
    )


def _judge_other_copies(
    sinks: list[LogSink],
    target: AuditBucket,
    allowed: Collection[str],
    problems: list[str],
    warnings: list[str],
) -> None:
    """Add each copy another sink may keep of the audit log to `problems`, or to
    `warnings` if the operator vouched for that sink."""
    for sink in sinks:
        copy = _other_copy(sink, target)
        if copy is None:
            continue
        if sink.name in allowed:
            warnings.append(f"{copy} (allowed by --allow-sink {sink.name})")
        else:
            problems.append(
                f"{copy}; add an exclusion with the filter {target.log_filter!r} to it, or "
                f"pass --allow-sink {sink.name} if that copy is meant"
            )


def _bucket_problems(bucket: LogBucket | None, target: AuditBucket, required: int) -> list[str]:
    if bucket is None:
        return [f"bucket {target.path} does not exist"]
    problems = []
    if bucket.lifecycle_state != LifecycleState.ACTIVE:
        problems.append(f"bucket {target.path} is {bucket.lifecycle_state.name}, not ACTIVE")
    if not bucket.locked:
        problems.append(
            f"bucket {target.path} is not locked: its retention can be shortened and "
            "it can be deleted"
        )
    if bucket.retention_days < required:
        problems.append(
            f"bucket {target.path} keeps entries {bucket.retention_days} days, under the "
            f"required {required}"
        )
    return problems


def _ensure_bucket(
    client: ConfigServiceV2Client, target: AuditBucket, days: int
) -> tuple[Step, LogBucket]:
    bucket = _read_bucket(client, target)
    if bucket is None:
        request = {
            "parent": location_path(target.project, target.location),
            "bucket_id": target.bucket,
            "bucket": {"retention_days": days, "description": BUCKET_DESCRIPTION},
        }
        with _calling(f"creating bucket {target.path}"):
            try:
                created = client.create_bucket(request=request)
                return Step(Outcome.CREATED, f"retention {days} days"), created
            except api_exceptions.AlreadyExists:
                pass  # another run created it between our read and our create: check it
            bucket = client.get_bucket(request={"name": target.path})
    if bucket.lifecycle_state != LifecycleState.ACTIVE:
        raise ProvisionRefused(
            f"bucket {target.path} is {bucket.lifecycle_state.name}, not ACTIVE; "
            "nothing was changed"
        )
    have = bucket.retention_days
    if have == days:
        return Step(Outcome.UNCHANGED, f"retention {days} days"), bucket
    if bucket.locked:
        enough = have >= MIN_RETENTION_DAYS
        hint = f"; ask for --retention-days {have} to accept it" if enough else ""
        raise ProvisionRefused(
            f"bucket {target.path} is locked with retention {have} days, not the {days} "
            f"asked: a locked bucket's retention can never change{hint}; nothing was changed"
        )
    if have > days:
        raise ProvisionRefused(
            f"bucket {target.path} keeps entries {have} days, longer than the {days} asked; "
            f"it will not be shortened (ask for --retention-days {have} to keep it); "
            "nothing was changed"
        )
    with _calling(f"raising the retention of {target.path}"):
        updated = client.update_bucket(
            request={
                "name": target.path,
                "bucket": {"retention_days": days},
                "update_mask": {"paths": ["retention_days"]},
            }
        )
    return Step(Outcome.UPDATED, f"retention {have} -> {days} days"), updated


def _ensure_lock(
    client: ConfigServiceV2Client, target: AuditBucket, bucket: LogBucket, lock: bool
) -> Step:
    if bucket.locked:
        return Step(Outcome.UNCHANGED, "locked")
    if not lock:
        return Step(
            Outcome.NOT_ASKED,
            "the bucket is NOT locked: its retention can still be shortened and it can be "
            "deleted; `custos logging check` fails until it is locked",
        )
    with _calling(f"locking {target.path}"):
        client.update_bucket(
            request={
                "name": target.path,
                "bucket": {"locked": True},
                "update_mask": {"paths": ["locked"]},
            }
        )
    return Step(
        Outcome.UPDATED,
        "locked now: its retention can never change, and it can only be deleted once empty",
    )


def _ensure_sink(
    client: ConfigServiceV2Client,
    target: AuditBucket,
    name: str,
    sink: LogSink | None,
    force: bool,
) -> tuple[Step, LogSink]:
    """Create the sink, or mend `sink` (as read before the bucket was touched)."""
    path = sink_path(target.project, name)
    route = f"{target.log_filter} -> {target.destination}"
    wanted = {
        "name": name,
        "destination": target.destination,
        "filter": target.log_filter,
        "description": SINK_DESCRIPTION,
    }
    if sink is None:
        with _calling(f"creating sink {path}"):
            try:
                # unique_writer_identity: true is never refused, false is refused on a
                # sink that once had it; for a bucket of the sink's own project neither
                # needs a grant (see `_grant`).
                created = client.create_sink(
                    request={
                        "parent": project_path(target.project),
                        "sink": wanted,
                        "unique_writer_identity": True,
                    }
                )
                return Step(Outcome.CREATED, route), created
            except api_exceptions.AlreadyExists:
                sink = client.get_sink(
                    request={"sink_name": path}
                )  # another run was first: check it
        if not force:
            _refuse_re_pointing(sink, target, "the sink was left as it is")
    differences = _sink_differences(sink, target)
    if not differences:
        return Step(Outcome.UNCHANGED, route), sink
    with _calling(f"updating sink {path}"):
        updated = client.update_sink(
            request={
                "sink_name": path,
                "sink": {**wanted, "disabled": False, "exclusions": []},
                "unique_writer_identity": True,
                "update_mask": {"paths": ["destination", "filter", "disabled", "exclusions"]},
            }
        )
    return Step(Outcome.UPDATED, f"{route} ({'; '.join(differences)})"), updated


def _refuse_re_pointing(sink: LogSink | None, target: AuditBucket, done: str) -> None:
    """ProvisionRefused if the sink exists and routes into another destination."""
    if sink is None or sink.destination == target.destination:
        return
    path = sink_path(target.project, sink.name)
    raise ProvisionRefused(
        f"sink {path} routes into {sink.destination} now, not {target.destination}; pass "
        f"--force-sink to re-point it (the log would no longer reach {sink.destination}), "
        f"or name another sink with --sink; {done}"
    )


def _ensure_default_exclusion(
    client: ConfigServiceV2Client, target: AuditBucket, name: str, keep: bool
) -> Step:
    path = sink_path(target.project, BUILTIN_DEFAULT_SINK)
    sink = _read_sink(client, target.project, BUILTIN_DEFAULT_SINK)
    state, copied = _default_copy(sink, target)
    if sink is None or _covering(sink, target):
        return Step(Outcome.UNCHANGED, state)
    if keep and not copied:  # the sink is disabled
        return Step(Outcome.NOT_ASKED, f"{state}; no exclusion added (--keep-default-copy)")
    if keep:
        return Step(
            Outcome.NOT_ASKED,
            "WARNING: --keep-default-copy: every audit record (exact MCP requests and "
            f"responses) is also kept in {sink.destination}, which is NOT locked and has "
            "its own retention and readers; `custos logging check` fails unless given "
            "--allow-default-copy",
        )
    # Added to a disabled `_Default` too, so enabling it again does not resume the copy.
    wanted = {
        "name": name,
        "description": EXCLUSION_DESCRIPTION,
        "filter": target.log_filter,
        "disabled": False,
    }
    ours = next((e for e in sink.exclusions if e.name == name), None)
    # A field in the update mask is overwritten whole: the list sent is the one just
    # read with ours added or mended, so the sink's other exclusions stay (and its
    # filter, not in the mask). LogSink has no etag: a change another writer makes
    # between the read and the update would be lost, as with `gcloud logging sinks
    # update --add-exclusion`.
    exclusions = [wanted if e.name == name else e for e in sink.exclusions]
    if ours is None:
        exclusions.append(wanted)
    with _calling(f"adding exclusion {name} to sink {path}"):
        client.update_sink(
            request={
                "sink_name": path,
                "sink": {"name": BUILTIN_DEFAULT_SINK, "exclusions": exclusions},
                # As for the audit sink (see `_ensure_sink`); `_Default` routes into a
                # bucket of its own project, so it gets no writer identity either way.
                "unique_writer_identity": True,
                "update_mask": {"paths": ["exclusions"]},
            }
        )
    done = f"exclusion {name} keeps {target.log_filter} out of {sink.destination}"
    if ours is None:
        return Step(Outcome.CREATED, done)
    was = "was disabled" if ours.disabled else f"filter was {ours.filter!r}"
    return Step(Outcome.UPDATED, f"{done} ({was})")


def _default_copy(sink: LogSink | None, target: AuditBucket) -> tuple[str, str | None]:
    """(What `_Default` does with the audit log, in words; why it keeps a copy, or None
    when it does not.) Only a disabled sink, or an active exclusion whose filter names
    exactly the audit log, counts: other filters are not interpreted (`_names_log`)."""
    if sink is None:
        return f"no {BUILTIN_DEFAULT_SINK} sink: nothing copies the audit log", None
    covering = _covering(sink, target)
    if covering:
        return f"exclusion {covering[0]} keeps the audit log out of {sink.destination}", None
    if sink.disabled:
        return f"sink {BUILTIN_DEFAULT_SINK} is disabled: it copies nothing", None
    state = f"sink {BUILTIN_DEFAULT_SINK} copies {target.log_filter} into {sink.destination}"
    naming = [e.name for e in sink.exclusions if _names_log(e.filter, target)]
    if naming:  # every one disabled, or it would cover
        return state, f"its exclusion {', '.join(naming)} for the audit log is disabled"
    active = [e.name for e in sink.exclusions if not e.disabled]
    if active:
        return state, (
            f"none of its exclusions ({', '.join(active)}) has the filter {target.log_filter!r}"
        )
    return state, f"it has no exclusion with the filter {target.log_filter!r}"


def _other_copy(sink: LogSink, target: AuditBucket) -> str | None:
    """How a sink other than `_Default`, `_Required` and those into the bucket copies the
    audit log elsewhere, in words; None when it does not (disabled, an active exclusion
    drops exactly the audit log, or its filter provably excludes it)."""
    builtin = sink.name in (BUILTIN_DEFAULT_SINK, BUILTIN_REQUIRED_SINK)
    if builtin or sink.destination == target.destination or sink.disabled:
        return None
    if _covering(sink, target):
        return None
    reach = _filter_reach(sink.filter, target)
    if reach is None:
        return None
    verb = "copies" if reach.certain else "may copy"
    return (
        f"sink {sink.name} {verb} {target.log_filter} into {sink.destination}, outside the "
        f"locked bucket: {reach.why}"
    )


@dataclass(frozen=True)
class _Reach:
    certain: bool  # the filter surely selects audit entries, not only perhaps
    why: str


def _filter_reach(text: str, target: AuditBucket) -> _Reach | None:
    """Whether a sink filter can select audit entries (None: provably not). Only a
    conjunction with a `logName = "..."` term for another log is taken as excluding it:
    the filters Custos reads are a small subset (`log_filter`), and a filter it cannot
    read is counted as one that may match."""
    if not text.strip():
        return _Reach(True, "its filter is empty: it takes every log")
    try:
        terms = log_filter.parse(text)
    except log_filter.FilterError:
        terms = None
    if terms is not None:
        ours = _folded(target.project, target.log_name)
        names = [_log_named(t) for t in terms if t.field == "logName" and t.op == "="]
        if any(name is not None and name != ours for name in names):
            return None  # all terms must hold, and this one never does for the audit log
        if ours in names:
            return _Reach(True, "its filter selects the audit log")
    return _Reach(
        False,
        f"its filter {text!r} is not shown to exclude the audit log (only a logName "
        "equality for another log is)",
    )


def _log_named(term: log_filter.Comparison) -> tuple[str, str] | None:
    """The log a logName term names, as `_folded` spells it; None if it names no valid
    log (then it is not taken as naming another one)."""
    try:
        return _folded(*parse_log_path(term.value))
    except ValueError:
        return None


def _folded(project: str, log_id: str) -> tuple[str, str]:
    # Decoded, so other %-escapes of one log id compare equal; case-folded, because the
    # query language compares strings case-insensitively: a name that differs from the
    # audit log's only in case may still select it.
    return project.casefold(), log_id.casefold()


def _covering(sink: LogSink, target: AuditBucket) -> list[str]:
    """The sink's active exclusions that drop exactly the audit log."""
    return [e.name for e in sink.exclusions if not e.disabled and _names_log(e.filter, target)]


def _sink_differences(sink: LogSink, target: AuditBucket) -> list[str]:
    differences = []
    if sink.destination != target.destination:
        differences.append(f"destination was {sink.destination}")
    if sink.filter != target.log_filter:
        differences.append(f"filter was {sink.filter!r}")
    if sink.disabled:
        differences.append("was disabled")
    if any(not exclusion.disabled for exclusion in sink.exclusions):
        differences.append("had exclusions")
    return differences


def _why_not_routing(sink: LogSink, target: AuditBucket) -> str | None:
    """Why this sink does not route every audit entry into the bucket (None: it does)."""
    if sink.destination != target.destination:
        return f"routes the audit log to {sink.destination}, not into the bucket"
    if not _names_log(sink.filter, target):
        return f"its filter is {sink.filter!r}, not {target.log_filter!r}"
    if sink.disabled:
        return "it is disabled"
    active = [e.name for e in sink.exclusions if not e.disabled]
    if active:
        return f"its exclusions ({', '.join(active)}) may drop audit entries"
    return None


def _names_log(text: str, target: AuditBucket) -> bool:
    """The filter selects exactly the audit log: one `logName = "..."` comparison."""
    try:
        terms = log_filter.parse(text)
    except log_filter.FilterError:
        return False
    return terms == (log_filter.Comparison("logName", "=", target.log_path),)


def _grant(writer_identity: str) -> str:
    # Google's LogSink reference: "Sinks that have a destination that is a log bucket in
    # the same project as the sink cannot have a writer_identity and no additional
    # permissions are required." Provisioning always puts both in the same project.
    if not writer_identity:
        return (
            "no IAM grant needed: the sink routes into a log bucket of its own project, "
            "and such a sink has no writer identity"
        )
    return (
        f"no IAM grant needed for {writer_identity}: the sink routes into a log bucket "
        "of its own project (a bucket in another project would need it granted "
        "roles/logging.bucketWriter there)"
    )


def _read_sink(client: ConfigServiceV2Client, project: str, name: str) -> LogSink | None:
    path = sink_path(project, name)
    return _get(lambda: client.get_sink(request={"sink_name": path}), f"reading sink {path}")


def _read_bucket(client: ConfigServiceV2Client, target: AuditBucket) -> LogBucket | None:
    return _get(
        lambda: client.get_bucket(request={"name": target.path}), f"reading bucket {target.path}"
    )


def _get(call: Callable[[], T], what: str) -> T | None:
    with _calling(what):
        try:
            return call()
        except api_exceptions.NotFound:
            return None


@contextmanager
def _calling(what: str) -> Iterator[None]:
    """Translate the client library's errors at the boundary, naming what was tried."""
    try:
        yield
    except api_exceptions.GoogleAPIError as exc:
        raise CloudLoggingError(f"Cloud Logging: {what} failed: {exc}") from exc
