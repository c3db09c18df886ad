"""The emulator's buckets and sinks, through the real client: the answers the real API
gives that provisioning relies on."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud.logging_v2.services.config_service_v2 import ConfigServiceV2Client

PROJECT = "custos-test"
PARENT = f"projects/{PROJECT}/locations/global"
BUCKET = f"{PARENT}/buckets/audit"


def create_bucket(client: ConfigServiceV2Client, days: int = 2190) -> None:
    client.create_bucket(
        request={"parent": PARENT, "bucket_id": "audit", "bucket": {"retention_days": days}}
    )


def update_bucket(client: ConfigServiceV2Client, paths: list[str], **fields: object) -> None:
    client.update_bucket(
        request={"name": BUCKET, "bucket": fields, "update_mask": {"paths": paths}}
    )


def test_a_project_starts_with_the_default_and_required_buckets_and_sinks(
    config_api: ConfigServiceV2Client,
) -> None:
    buckets = {
        b.name.rsplit("/", 1)[1]: b
        for b in config_api.list_buckets(parent=f"projects/{PROJECT}/locations/-")
    }
    sinks = {s.name: s for s in config_api.list_sinks(parent=f"projects/{PROJECT}")}

    assert set(buckets) == set(sinks) == {"_Default", "_Required"}
    assert (buckets["_Required"].locked, buckets["_Required"].retention_days) == (True, 400)
    assert (buckets["_Default"].locked, buckets["_Default"].retention_days) == (False, 30)
    assert sinks["_Default"].destination.endswith("/buckets/_Default")


def test_missing_and_duplicate_resources(config_api: ConfigServiceV2Client) -> None:
    with pytest.raises(exceptions.NotFound):
        config_api.get_bucket(request={"name": BUCKET})
    with pytest.raises(exceptions.NotFound):
        config_api.get_sink(sink_name=f"projects/{PROJECT}/sinks/nope")
    create_bucket(config_api)
    with pytest.raises(exceptions.AlreadyExists):
        create_bucket(config_api)


def test_a_locked_bucket_refuses_changes_to_retention_and_lock(
    config_api: ConfigServiceV2Client,
) -> None:
    create_bucket(config_api)
    update_bucket(config_api, ["locked"], locked=True)

    with pytest.raises(exceptions.FailedPrecondition):
        update_bucket(config_api, ["retention_days"], retention_days=3650)
    with pytest.raises(exceptions.FailedPrecondition):
        update_bucket(config_api, ["locked"], locked=False)
    update_bucket(config_api, ["description"], description="still allowed")

    bucket = config_api.get_bucket(request={"name": BUCKET})
    assert (bucket.locked, bucket.retention_days, bucket.description) == (
        True,
        2190,
        "still allowed",
    )


def test_an_unlocked_bucket_changes_only_the_fields_in_the_mask(
    config_api: ConfigServiceV2Client,
) -> None:
    create_bucket(config_api, days=30)

    update_bucket(config_api, ["retentionDays"], retention_days=2190, description="ignored")

    bucket = config_api.get_bucket(request={"name": BUCKET})
    assert (bucket.retention_days, bucket.description) == (2190, "")
    with pytest.raises(exceptions.InvalidArgument):
        update_bucket(config_api, [], retention_days=400)
    with pytest.raises(exceptions.InvalidArgument):
        update_bucket(config_api, ["retention_days"], retention_days=4000)


def test_writer_identity_only_for_a_destination_outside_the_project(
    config_api: ConfigServiceV2Client,
) -> None:
    def create(name: str, destination: str) -> str:
        sink = config_api.create_sink(
            request={
                "parent": f"projects/{PROJECT}",
                "sink": {"name": name, "destination": destination, "filter": ""},
                "unique_writer_identity": True,
            }
        )
        return sink.writer_identity

    same = create("same", f"logging.googleapis.com/{BUCKET}")
    other = create("other", "logging.googleapis.com/projects/elsewhere/locations/global/buckets/b")

    assert same == ""
    assert other.startswith("serviceAccount:service-")
    assert other.endswith("@gcp-sa-logging.iam.gserviceaccount.com")
    with pytest.raises(exceptions.InvalidArgument):
        create("bad", "somewhere.example.com/x")


def test_a_sink_update_without_mask_changes_destination_and_filter(
    config_api: ConfigServiceV2Client,
) -> None:
    config_api.create_sink(
        parent=f"projects/{PROJECT}",
        sink={"name": "s", "destination": f"logging.googleapis.com/{BUCKET}", "filter": "a"},
    )

    config_api.update_sink(
        sink_name=f"projects/{PROJECT}/sinks/s",
        sink={"destination": f"logging.googleapis.com/{BUCKET}", "filter": "b", "disabled": True},
    )

    sink = config_api.get_sink(sink_name=f"projects/{PROJECT}/sinks/s")
    assert (sink.filter, sink.disabled) == ("b", False)


def test_an_exclusions_update_replaces_the_list_and_nothing_else(
    config_api: ConfigServiceV2Client,
) -> None:
    name = f"projects/{PROJECT}/sinks/_Default"
    before = config_api.get_sink(sink_name=name)

    def set_exclusions(*exclusions: dict[str, object]) -> None:
        config_api.update_sink(
            request={
                "sink_name": name,
                "sink": {"filter": "ignored", "exclusions": list(exclusions)},
                "update_mask": {"paths": ["exclusions"]},
            }
        )

    set_exclusions({"name": "a", "filter": "severity<INFO"}, {"name": "b", "filter": "x"})
    set_exclusions({"name": "c", "filter": "y", "disabled": True})

    sink = config_api.get_sink(sink_name=name)
    assert [(e.name, e.filter, e.disabled) for e in sink.exclusions] == [("c", "y", True)]
    assert (sink.filter, sink.destination) == (before.filter, before.destination)
    with pytest.raises(exceptions.InvalidArgument):
        set_exclusions({"name": "_bad", "filter": "x"})
    with pytest.raises(exceptions.InvalidArgument):
        set_exclusions({"name": "no-filter", "filter": " "})
    assert len(config_api.get_sink(sink_name=name).exclusions) == 1
