"""`provision` and `check` as plain functions, through the real client, against the
emulator: what they create, what they refuse, and every reason a check fails."""

from __future__ import annotations

import re

import pytest
from google.cloud.logging_v2.services.config_service_v2 import ConfigServiceV2Client

from custos.cloud_logging.provision import AuditBucket, Outcome, Step, check, provision
from custos.errors import CloudLoggingError, ProvisionRefused

TARGET = AuditBucket("custos-test", "global", "audit")
SINK = "projects/custos-test/sinks/custos-audit"
DEFAULT_BUCKET = "logging.googleapis.com/projects/custos-test/locations/global/buckets/_Default"
DEFAULT_SINK = "projects/custos-test/sinks/_Default"
DEFAULT_COPY = (
    f"sink _Default copies {TARGET.log_filter} into {DEFAULT_BUCKET}, outside the locked "
    "bucket: {reason}; add an exclusion with that filter to it (`custos logging provision` "
    "does) or pass --allow-default-copy"
)
NO_EXCLUSION = f"it has no exclusion with the filter {TARGET.log_filter!r}"


def bucket_fields(client: ConfigServiceV2Client) -> tuple[int, bool]:
    bucket = client.get_bucket(request={"name": TARGET.path})
    return bucket.retention_days, bucket.locked


def make_bucket(client: ConfigServiceV2Client, days: int, *, locked: bool) -> None:
    client.create_bucket(
        request={
            "parent": "projects/custos-test/locations/global",
            "bucket_id": "audit",
            "bucket": {"retention_days": days},
        }
    )
    if locked:
        client.update_bucket(
            request={
                "name": TARGET.path,
                "bucket": {"locked": True},
                "update_mask": {"paths": ["locked"]},
            }
        )


def set_default_exclusions(client: ConfigServiceV2Client, *exclusions: dict[str, object]) -> None:
    client.update_sink(
        request={
            "sink_name": DEFAULT_SINK,
            "sink": {"exclusions": list(exclusions)},
            "update_mask": {"paths": ["exclusions"]},
        }
    )


def default_exclusions(client: ConfigServiceV2Client) -> list[tuple[str, str, bool]]:
    sink = client.get_sink(sink_name=DEFAULT_SINK)
    return [(e.name, e.filter, e.disabled) for e in sink.exclusions]


def test_provision_creates_bucket_lock_and_sink(config_api: ConfigServiceV2Client) -> None:
    done = provision(config_api, TARGET, lock=True)

    assert (done.bucket.outcome, done.lock.outcome, done.sink.outcome) == (
        Outcome.CREATED,
        Outcome.UPDATED,
        Outcome.CREATED,
    )
    assert bucket_fields(config_api) == (2190, True)
    sink = config_api.get_sink(sink_name=SINK)
    assert sink.destination == "logging.googleapis.com/" + TARGET.path
    assert sink.filter == 'logName="projects/custos-test/logs/custos-audit"'
    assert done.writer_identity == ""
    assert done.grant.startswith("no IAM grant needed")


def test_provision_twice_changes_nothing_the_second_time(
    config_api: ConfigServiceV2Client,
) -> None:
    provision(config_api, TARGET, lock=True)

    again = provision(config_api, TARGET, lock=True)

    assert {
        again.bucket.outcome,
        again.lock.outcome,
        again.sink.outcome,
        again.default_copy.outcome,
    } == {Outcome.UNCHANGED}
    assert default_exclusions(config_api) == [("custos-audit", TARGET.log_filter, False)]


def test_provision_without_lock_says_the_bucket_is_unlocked(
    config_api: ConfigServiceV2Client,
) -> None:
    done = provision(config_api, TARGET)

    assert done.lock.outcome == Outcome.NOT_ASKED
    assert "NOT locked" in done.lock.detail
    assert bucket_fields(config_api) == (2190, False)


def test_provision_refuses_short_retention_and_creates_nothing(
    config_api: ConfigServiceV2Client,
) -> None:
    with pytest.raises(ProvisionRefused, match="under the 2190"):
        provision(config_api, TARGET, retention_days=365, lock=True)

    assert not check(config_api, TARGET).retention_days  # no bucket was made


def test_short_retention_when_explicitly_allowed(config_api: ConfigServiceV2Client) -> None:
    provision(config_api, TARGET, retention_days=7, allow_short_retention=True)

    assert bucket_fields(config_api) == (7, False)


def test_a_locked_bucket_with_other_retention_is_refused_untouched(
    config_api: ConfigServiceV2Client,
) -> None:
    make_bucket(config_api, 3650, locked=True)

    with pytest.raises(ProvisionRefused, match="locked with retention 3650 days"):
        provision(config_api, TARGET, lock=True)

    assert bucket_fields(config_api) == (3650, True)
    assert "custos-audit" not in {
        s.name for s in config_api.list_sinks(parent="projects/custos-test")
    }


def test_an_unlocked_bucket_with_shorter_retention_is_raised_then_locked(
    config_api: ConfigServiceV2Client,
) -> None:
    make_bucket(config_api, 30, locked=False)

    done = provision(config_api, TARGET, lock=True)

    assert (done.bucket.outcome, done.bucket.detail) == (
        Outcome.UPDATED,
        "retention 30 -> 2190 days",
    )
    assert bucket_fields(config_api) == (2190, True)


def test_an_unlocked_bucket_with_longer_retention_is_not_shortened(
    config_api: ConfigServiceV2Client,
) -> None:
    make_bucket(config_api, 3000, locked=False)

    with pytest.raises(ProvisionRefused, match="will not be shortened"):
        provision(config_api, TARGET, lock=True)

    assert bucket_fields(config_api) == (3000, False)


def test_a_sink_with_another_filter_is_corrected(config_api: ConfigServiceV2Client) -> None:
    config_api.create_sink(
        parent="projects/custos-test",
        sink={"name": "custos-audit", "destination": TARGET.destination, "filter": ""},
    )

    done = provision(config_api, TARGET, lock=True)

    assert done.sink.outcome == Outcome.UPDATED
    assert done.sink.detail.endswith("(filter was '')")
    assert check(config_api, TARGET).ok


def test_a_sink_into_another_destination_is_corrected_only_when_forced(
    config_api: ConfigServiceV2Client,
) -> None:
    config_api.create_sink(
        parent="projects/custos-test",
        sink={"name": "custos-audit", "destination": "storage.googleapis.com/x", "filter": ""},
    )
    with pytest.raises(
        ProvisionRefused, match=re.escape("routes into storage.googleapis.com/x now")
    ):
        provision(config_api, TARGET, lock=True)

    done = provision(config_api, TARGET, lock=True, force_sink=True)

    assert done.sink.outcome == Outcome.UPDATED
    assert "destination was storage.googleapis.com/x" in done.sink.detail
    assert check(config_api, TARGET).ok


def test_check_passes_after_provision(config_api: ConfigServiceV2Client) -> None:
    provision(config_api, TARGET, lock=True)

    result = check(config_api, TARGET)

    assert result.ok, result.problems
    assert (result.retention_days, result.locked, result.routing_sinks) == (
        2190,
        True,
        ("custos-audit",),
    )


def test_check_names_an_unlocked_bucket(config_api: ConfigServiceV2Client) -> None:
    provision(config_api, TARGET)

    assert check(config_api, TARGET).problems == (
        f"bucket {TARGET.path} is not locked: its retention can be shortened and it can be deleted",
    )


def test_check_names_short_retention(config_api: ConfigServiceV2Client) -> None:
    provision(config_api, TARGET, retention_days=400, lock=True, allow_short_retention=True)

    assert check(config_api, TARGET).problems == (
        f"bucket {TARGET.path} keeps entries 400 days, under the required 2190",
    )
    assert check(config_api, TARGET, retention_days=400, allow_short_retention=True).ok


def test_check_names_a_missing_bucket_and_sink(config_api: ConfigServiceV2Client) -> None:
    assert check(config_api, TARGET).problems == (
        f"bucket {TARGET.path} does not exist",
        f"no sink routes {TARGET.log_filter} into {TARGET.destination}",
        DEFAULT_COPY.format(reason=NO_EXCLUSION),
    )


def test_check_names_a_missing_sink(config_api: ConfigServiceV2Client) -> None:
    make_bucket(config_api, 2190, locked=True)

    assert check(config_api, TARGET, allow_default_copy=True).problems == (
        f"no sink routes {TARGET.log_filter} into {TARGET.destination}",
    )


@pytest.mark.parametrize(
    ("sink", "reason"),
    [
        (
            {"filter": 'logName="projects/custos-test/logs/other"'},
            "its filter is 'logName=\"projects/custos-test/logs/other\"', not "
            "'logName=\"projects/custos-test/logs/custos-audit\"'",
        ),
        (
            {"filter": TARGET.log_filter + ' AND insertId="x"'},
            'its filter is \'logName="projects/custos-test/logs/custos-audit" AND '
            'insertId="x"\', not \'logName="projects/custos-test/logs/custos-audit"\'',
        ),
        ({"disabled": True}, "it is disabled"),
        (
            {"exclusions": [{"name": "drop-some", "filter": 'insertId="x"'}]},
            "its exclusions (drop-some) may drop audit entries",
        ),
        (
            {"destination": DEFAULT_BUCKET},
            f"routes the audit log to {DEFAULT_BUCKET}, not into the bucket",
        ),
    ],
)
def test_check_names_why_a_sink_does_not_count(
    config_api: ConfigServiceV2Client, sink: dict[str, object], reason: str
) -> None:
    make_bucket(config_api, 2190, locked=True)
    fields = {"destination": TARGET.destination, "filter": TARGET.log_filter, **sink}
    config_api.create_sink(parent="projects/custos-test", sink={"name": "custom", **fields})

    assert check(config_api, TARGET, allow_default_copy=True).problems == (
        f"no sink routes {TARGET.log_filter} into {TARGET.destination}",
        f"sink custom: {reason}",
    )


def test_a_filter_with_other_spacing_still_counts(config_api: ConfigServiceV2Client) -> None:
    make_bucket(config_api, 2190, locked=True)
    config_api.create_sink(
        parent="projects/custos-test",
        sink={
            "name": "spaced",
            "destination": TARGET.destination,
            "filter": f'  logName = "{TARGET.log_path}" ',
        },
    )

    assert check(config_api, TARGET).routing_sinks == ("spaced",)


def test_an_impossible_log_name_is_refused_before_any_call() -> None:
    with pytest.raises(CloudLoggingError, match="log name"):
        AuditBucket("custos-test", "global", "audit", log_name="bad name")


# The _Default sink: Google routes every log not sent to _Required into the _Default
# bucket, so without an exclusion there a second, unlocked copy of each record is kept.


def test_provision_excludes_the_audit_log_from_default(config_api: ConfigServiceV2Client) -> None:
    default_filter = config_api.get_sink(sink_name=DEFAULT_SINK).filter

    done = provision(config_api, TARGET, lock=True)

    assert done.default_sink_path == DEFAULT_SINK
    assert (done.default_copy.outcome, done.default_copy.detail) == (
        Outcome.CREATED,
        f"exclusion custos-audit keeps {TARGET.log_filter} out of {DEFAULT_BUCKET}",
    )
    sink = config_api.get_sink(sink_name=DEFAULT_SINK)
    assert default_exclusions(config_api) == [("custos-audit", TARGET.log_filter, False)]
    assert "Custos audit records" in sink.exclusions[0].description
    assert (sink.filter, sink.destination, sink.disabled) == (default_filter, DEFAULT_BUCKET, False)
    result = check(config_api, TARGET)
    assert result.ok, result.problems
    assert (
        result.default_copy == f"exclusion custos-audit keeps the audit log out of {DEFAULT_BUCKET}"
    )


def test_provision_keeps_the_default_sinks_other_exclusions(
    config_api: ConfigServiceV2Client,
) -> None:
    set_default_exclusions(
        config_api,
        {"name": "no-debug", "filter": "severity<INFO"},
        {"name": "paused", "filter": 'resource.type="gce_instance"', "disabled": True},
    )

    provision(config_api, TARGET, lock=True)
    provision(config_api, TARGET, lock=True)

    assert default_exclusions(config_api) == [
        ("no-debug", "severity<INFO", False),
        ("paused", 'resource.type="gce_instance"', True),
        ("custos-audit", TARGET.log_filter, False),
    ]


def test_provision_mends_its_disabled_exclusion_in_place(
    config_api: ConfigServiceV2Client,
) -> None:
    set_default_exclusions(
        config_api,
        {"name": "custos-audit", "filter": TARGET.log_filter, "disabled": True},
        {"name": "no-debug", "filter": "severity<INFO"},
    )

    done = provision(config_api, TARGET, lock=True)

    assert done.default_copy.outcome == Outcome.UPDATED
    assert done.default_copy.detail.endswith("(was disabled)")
    assert default_exclusions(config_api) == [
        ("custos-audit", TARGET.log_filter, False),
        ("no-debug", "severity<INFO", False),
    ]


def test_provision_mends_its_exclusion_with_another_filter(
    config_api: ConfigServiceV2Client,
) -> None:
    set_default_exclusions(config_api, {"name": "custos-audit", "filter": "severity<INFO"})

    done = provision(config_api, TARGET, lock=True)

    assert done.default_copy.outcome == Outcome.UPDATED
    assert done.default_copy.detail.endswith("(filter was 'severity<INFO')")
    assert default_exclusions(config_api) == [("custos-audit", TARGET.log_filter, False)]


def test_an_exclusion_of_another_name_for_the_audit_log_is_left_alone(
    config_api: ConfigServiceV2Client,
) -> None:
    set_default_exclusions(config_api, {"name": "phi-out", "filter": TARGET.log_filter})

    done = provision(config_api, TARGET, lock=True)

    assert done.default_copy == (
        Step(Outcome.UNCHANGED, f"exclusion phi-out keeps the audit log out of {DEFAULT_BUCKET}")
    )
    assert default_exclusions(config_api) == [("phi-out", TARGET.log_filter, False)]


def test_two_deployments_in_one_project_keep_an_exclusion_each(
    config_api: ConfigServiceV2Client,
) -> None:
    other = AuditBucket("custos-test", "global", "audit-b", log_name="custos-audit-b")

    provision(config_api, TARGET, lock=True)
    provision(config_api, other, lock=True, sink_name="custos-audit-b")

    assert default_exclusions(config_api) == [
        ("custos-audit", TARGET.log_filter, False),
        ("custos-audit-b", other.log_filter, False),
    ]
    assert check(config_api, TARGET).ok
    assert check(config_api, other).ok


def test_keep_default_copy_adds_no_exclusion_and_warns(config_api: ConfigServiceV2Client) -> None:
    done = provision(config_api, TARGET, lock=True, keep_default_copy=True)

    assert done.default_copy.outcome == Outcome.NOT_ASKED
    assert done.default_copy.detail.startswith("WARNING: --keep-default-copy: every audit record")
    assert f"also kept in {DEFAULT_BUCKET}, which is NOT locked" in done.default_copy.detail
    assert default_exclusions(config_api) == []


def test_check_fails_while_default_copies_the_audit_log(
    config_api: ConfigServiceV2Client,
) -> None:
    provision(config_api, TARGET, lock=True, keep_default_copy=True)

    result = check(config_api, TARGET)

    assert result.problems == (DEFAULT_COPY.format(reason=NO_EXCLUSION),)
    assert result.routing_sinks == ("custos-audit",)  # the audit sink itself is fine


def test_allow_default_copy_turns_the_problem_into_a_warning(
    config_api: ConfigServiceV2Client,
) -> None:
    provision(config_api, TARGET, lock=True, keep_default_copy=True)

    result = check(config_api, TARGET, allow_default_copy=True)

    assert result.ok
    assert result.warnings == (
        f"sink _Default copies {TARGET.log_filter} into {DEFAULT_BUCKET}, outside the locked "
        f"bucket: {NO_EXCLUSION} (allowed by --allow-default-copy)",
    )


@pytest.mark.parametrize(
    ("exclusions", "reason"),
    [
        (
            [{"name": "custos-audit", "filter": TARGET.log_filter, "disabled": True}],
            "its exclusion custos-audit for the audit log is disabled",
        ),
        (
            [
                {"name": "no-debug", "filter": "severity<INFO"},
                {"name": "off", "filter": TARGET.log_filter + ' AND insertId="x"'},
            ],
            f"none of its exclusions (no-debug, off) has the filter {TARGET.log_filter!r}",
        ),
        (
            [{"name": "other-log", "filter": 'logName="projects/custos-test/logs/other"'}],
            f"none of its exclusions (other-log) has the filter {TARGET.log_filter!r}",
        ),
    ],
)
def test_check_names_why_the_default_exclusions_do_not_count(
    config_api: ConfigServiceV2Client, exclusions: list[dict[str, object]], reason: str
) -> None:
    provision(config_api, TARGET, lock=True, keep_default_copy=True)
    set_default_exclusions(config_api, *exclusions)

    assert check(config_api, TARGET).problems == (DEFAULT_COPY.format(reason=reason),)


def test_a_disabled_default_sink_copies_nothing(config_api: ConfigServiceV2Client) -> None:
    provision(config_api, TARGET, lock=True, keep_default_copy=True)
    config_api.update_sink(
        request={
            "sink_name": DEFAULT_SINK,
            "sink": {"disabled": True},
            "update_mask": {"paths": ["disabled"]},
        }
    )

    result = check(config_api, TARGET)

    assert result.ok, result.problems
    assert result.default_copy == "sink _Default is disabled: it copies nothing"
    # Provisioning still adds the exclusion, so enabling _Default again copies nothing.
    assert provision(config_api, TARGET, lock=True).default_copy.outcome == Outcome.CREATED


# The retention floor: check holds the bucket to six years, as provision does, unless
# short retention is asked for explicitly.

UNDER_FLOOR = (
    "--retention-days 30 is under the 2190 days (six years) audit records need; pass "
    "--allow-short-retention if this is not for production"
)


def test_check_refuses_a_retention_under_the_floor(config_api: ConfigServiceV2Client) -> None:
    provision(config_api, TARGET, retention_days=30, lock=True, allow_short_retention=True)

    result = check(config_api, TARGET, retention_days=30)

    assert result.problems == (
        UNDER_FLOOR,
        f"bucket {TARGET.path} keeps entries 30 days, under the required 2190",
    )
    assert result.required_days == 2190


def test_check_takes_a_short_retention_when_explicitly_allowed(
    config_api: ConfigServiceV2Client,
) -> None:
    provision(config_api, TARGET, retention_days=30, lock=True, allow_short_retention=True)

    result = check(config_api, TARGET, retention_days=30, allow_short_retention=True)

    assert result.ok, result.problems
    assert result.required_days == 30


def test_asking_check_for_less_than_the_floor_fails_even_on_a_long_bucket(
    config_api: ConfigServiceV2Client,
) -> None:
    provision(config_api, TARGET, lock=True)

    assert check(config_api, TARGET, retention_days=30).problems == (UNDER_FLOOR,)


# Other sinks: any enabled sink of the project, besides _Required, _Default and those into
# the locked bucket, that may take the audit log keeps a copy outside the locked bucket.

ELSEWHERE = "storage.googleapis.com/someone-elses-bucket"


def add_sink(client: ConfigServiceV2Client, name: str, **fields: object) -> None:
    client.create_sink(
        parent="projects/custos-test",
        sink={"name": name, "destination": ELSEWHERE, **fields},
    )


def copy_problem(name: str, why: str, verb: str = "copies") -> str:
    return (
        f"sink {name} {verb} {TARGET.log_filter} into {ELSEWHERE}, outside the locked "
        f"bucket: {why}; add an exclusion with the filter {TARGET.log_filter!r} to it, or "
        f"pass --allow-sink {name} if that copy is meant"
    )


@pytest.mark.parametrize(
    ("sink_filter", "problem"),
    [
        (TARGET.log_filter, copy_problem("copier", "its filter selects the audit log")),
        ("", copy_problem("copier", "its filter is empty: it takes every log")),
        (
            f'{TARGET.log_filter} AND insertId="x"',
            copy_problem("copier", "its filter selects the audit log"),
        ),
        (
            # The query language compares strings case-insensitively.
            'logName="projects/custos-test/logs/CUSTOS-AUDIT"',
            copy_problem("copier", "its filter selects the audit log"),
        ),
        (
            'logName="projects/custos-test/logs/custos%2Daudit"',
            copy_problem("copier", "its filter selects the audit log"),
        ),
        (
            'logName!="projects/custos-test/logs/other"',
            copy_problem(
                "copier",
                "its filter 'logName!=\"projects/custos-test/logs/other\"' is not shown to "
                "exclude the audit log (only a logName equality for another log is)",
                verb="may copy",
            ),
        ),
        (
            'LOG_ID("custos-audit")',
            copy_problem(
                "copier",
                "its filter 'LOG_ID(\"custos-audit\")' is not shown to exclude the audit log "
                "(only a logName equality for another log is)",
                verb="may copy",
            ),
        ),
    ],
)
def test_check_fails_while_another_sink_may_copy_the_audit_log(
    config_api: ConfigServiceV2Client, sink_filter: str, problem: str
) -> None:
    provision(config_api, TARGET, lock=True)
    add_sink(config_api, "copier", filter=sink_filter)

    result = check(config_api, TARGET)

    assert result.problems == (problem,)
    assert result.routing_sinks == ("custos-audit",)


@pytest.mark.parametrize(
    "sink",
    [
        {"filter": 'logName="projects/custos-test/logs/other"'},
        {"filter": 'logName="projects/custos-test/logs/other" AND insertId="x"'},
        {"filter": 'logName="projects/another-project/logs/custos-audit"'},
        {"filter": "", "disabled": True},
        {"filter": "", "exclusions": [{"name": "no-audit", "filter": TARGET.log_filter}]},
    ],
)
def test_a_sink_that_cannot_take_the_audit_log_is_no_problem(
    config_api: ConfigServiceV2Client, sink: dict[str, object]
) -> None:
    provision(config_api, TARGET, lock=True)
    add_sink(config_api, "other", **sink)

    result = check(config_api, TARGET)

    assert result.ok, result.problems
    assert result.warnings == ()


def test_a_disabled_exclusion_for_the_audit_log_does_not_count(
    config_api: ConfigServiceV2Client,
) -> None:
    provision(config_api, TARGET, lock=True)
    exclusion = {"name": "no-audit", "filter": TARGET.log_filter, "disabled": True}
    add_sink(config_api, "copier", filter="", exclusions=[exclusion])

    assert check(config_api, TARGET).problems == (
        copy_problem("copier", "its filter is empty: it takes every log"),
    )


def test_allow_sink_turns_that_sinks_copy_into_a_warning(
    config_api: ConfigServiceV2Client,
) -> None:
    provision(config_api, TARGET, lock=True)
    add_sink(config_api, "vouched", filter="")
    add_sink(config_api, "copier", filter=TARGET.log_filter)

    result = check(config_api, TARGET, allow_sinks=("vouched",))

    assert result.problems == (copy_problem("copier", "its filter selects the audit log"),)
    assert result.warnings == (
        copy_problem("vouched", "its filter is empty: it takes every log").split("; add")[0]
        + " (allowed by --allow-sink vouched)",
    )


def test_allow_default_copy_covers_default_only(config_api: ConfigServiceV2Client) -> None:
    provision(config_api, TARGET, lock=True, keep_default_copy=True)
    add_sink(config_api, "copier", filter="")

    result = check(config_api, TARGET, allow_default_copy=True)

    assert result.problems == (copy_problem("copier", "its filter is empty: it takes every log"),)
    assert len(result.warnings) == 1 and result.warnings[0].startswith("sink _Default copies")


def test_allow_sink_does_not_cover_default(config_api: ConfigServiceV2Client) -> None:
    with pytest.raises(CloudLoggingError, match="--allow-default-copy"):
        check(config_api, TARGET, allow_sinks=("_Default",))


# An existing audit sink that routes elsewhere (say into the bucket of another location)
# is not re-pointed without --force-sink: it may be what feeds a locked bucket now.

OTHER_LOCATION = AuditBucket("custos-test", "europe-west1", "audit")


def test_provision_refuses_to_re_point_an_existing_sink(
    config_api: ConfigServiceV2Client,
) -> None:
    provision(config_api, TARGET, lock=True)

    with pytest.raises(ProvisionRefused) as refused:
        provision(config_api, OTHER_LOCATION, lock=True)

    assert str(refused.value) == (
        f"sink {SINK} routes into {TARGET.destination} now, not {OTHER_LOCATION.destination}; "
        "pass --force-sink to re-point it (the log would no longer reach "
        f"{TARGET.destination}), or name another sink with --sink; nothing was changed"
    )
    assert config_api.get_sink(sink_name=SINK).destination == TARGET.destination
    assert check(config_api, OTHER_LOCATION).retention_days is None  # no bucket made
    assert check(config_api, TARGET).ok


def test_force_sink_re_points_it(config_api: ConfigServiceV2Client) -> None:
    provision(config_api, TARGET, lock=True)

    done = provision(config_api, OTHER_LOCATION, lock=True, force_sink=True)

    assert done.sink.outcome == Outcome.UPDATED
    assert done.sink.detail.endswith(f"(destination was {TARGET.destination})")
    assert config_api.get_sink(sink_name=SINK).destination == OTHER_LOCATION.destination
    assert check(config_api, OTHER_LOCATION).ok
