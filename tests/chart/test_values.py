"""values.schema.json refuses what would install a broken or weakened Custos, with messages
that name the value; and the optional Config Connector resources keep the audit log the
way `custos logging provision` does."""

from __future__ import annotations

from typing import Any

import pytest

from custos.cloud_logging.resource_names import bucket_path, log_filter
from tests.chart.chart import merged, render, render_error, required_values, schema_error


def without(path: str) -> dict[str, Any]:
    values = required_values()
    *parents, last = path.split(".")
    node = values
    for key in parents:
        node = node[key]
    del node[last]
    return values


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("image.repository", "/image"),
        ("mcpServer.image", "/mcpServer"),
        ("publicUrl", "publicUrl"),
        ("oidc.issuers", "/oidc"),
        ("audit.signingKey", "/audit"),
        ("cloudLogging.project", "/cloudLogging"),
    ],
)
def test_missing_required_values_are_refused(missing: str, named: str) -> None:
    message = schema_error(without(missing))
    assert named in message
    assert missing.rsplit(".", 1)[-1] in message


def test_an_empty_install_names_every_missing_value() -> None:
    message = schema_error({})
    for value in ("image", "mcpServer", "publicUrl", "oidc", "audit", "cloudLogging"):
        assert value in message


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"replicaCount": "two"}, "/replicaCount"),
        ({"ports": {"envoy": 70000}}, "/ports/envoy"),
        ({"ports": {"envoy": "8080"}}, "/ports/envoy"),
        ({"publicUrl": "ftp://mcp.clinic.example"}, "/publicUrl"),
        ({"mcpServer": {"path": "mcp"}}, "/mcpServer/path"),
        # Keys fetched over plain HTTP could be swapped: https only, loopback aside.
        ({"oidc": {"issuers": [{"issuer": "http://idp.example", "audience": "a"}]}}, "issuer"),
        ({"oidc": {"issuers": [{"issuer": "https://idp.example"}]}}, "audience"),
        ({"cloudLogging": {"retentionDays": 30}}, "/cloudLogging/retentionDays"),
        ({"cloudLogging": {"project": "Not A Project"}}, "/cloudLogging/project"),
        # The API takes log ids under 512 characters; every write would be refused.
        ({"cloudLogging": {"logName": "a" * 512}}, "/cloudLogging/logName"),
        ({"audit": {"whenFull": "ignore"}}, "/audit/whenFull"),
        ({"audit": {"spool": {"sizeMiB": 1}}}, "/audit/spool/sizeMiB"),
        ({"networkPolicy": {"enabled": "yes"}}, "/networkPolicy/enabled"),
        ({"runAsUser": 0}, "/runAsUser"),
        ({"replicas": 3}, "replicas"),  # a typo of replicaCount is an error, not ignored
        ({"envoy": {"authzTimeoutMs": 5}}, "/envoy/authzTimeoutMs"),
        # Envoy speaks plain HTTP: nothing but ClusterIP, with TLS ended in front of it.
        ({"service": {"type": "LoadBalancer"}}, "/service/type"),
        ({"publicUrl": "http://mcp.clinic.example"}, "/publicUrl"),
        # Values written into manifests cannot carry YAML of their own.
        ({"audit": {"signingKey": {"key": "a, path: x }\n - { key: b"}}}, "/audit/signingKey/key"),
        ({"pseudonymKey": {"existingSecret": "x }, key: y"}}, "/pseudonymKey/existingSecret"),
        ({"image": {"repository": "custos\n  evil: 1"}}, "/image/repository"),
        ({"mcpServer": {"env": [{"name": "PORT", "value": 5}]}}, "/mcpServer/env/0/value"),
        ({"listenAddress": "::"}, "/listenAddress"),  # host:port would not parse
        ({"mcpServer": {"path": "/healthz"}}, "/mcpServer/path"),  # Envoy's readiness
    ],
)
def test_wrong_values_are_refused_by_name(bad: dict[str, Any], named: str) -> None:
    assert named in schema_error(merged(required_values(), bad))


def test_the_longest_log_name_the_api_takes_is_accepted() -> None:
    render(merged(required_values(), {"cloudLogging": {"logName": "a" * 511}}))


def test_config_connector_needs_the_google_service_account() -> None:
    message = schema_error(merged(required_values(), {"configConnector": {"enabled": True}}))
    assert "gcpServiceAccount" in message


def test_rules_must_be_given_unless_an_existing_configmap_holds_them() -> None:
    assert "masking" in schema_error(merged(required_values(), {"rules": {"masking": None}}))
    merged_values = merged(required_values(), {"rules": {"existingConfigMap": "clinic-rules"}})
    render(merged_values)  # accepted


def test_config_connector_resources_keep_the_audit_log_locked() -> None:
    project, log = "clinic-audit-prod", "custos/audit"
    values = merged(
        required_values(),
        {
            "configConnector": {"enabled": True, "clusterProject": "clinic-gke-prod"},
            "serviceAccount": {
                "gcpServiceAccount": f"custos-audit@{project}.iam.gserviceaccount.com"
            },
            "cloudLogging": {"project": project, "logName": log, "bucket": "phi-audit"},
        },
    )
    rendered = render(values)
    bucket = rendered.one("LoggingLogBucket")
    assert bucket["spec"]["locked"] is True
    assert bucket["spec"]["retentionDays"] >= 2190
    assert bucket["spec"]["resourceID"] == "phi-audit"
    # An uninstall must not try to delete what an auditor relies on.
    for kind in ("LoggingLogBucket", "LoggingLogSink", "LoggingLogExclusion"):
        annotations = rendered.one(kind)["metadata"]["annotations"]
        assert annotations["cnrm.cloud.google.com/deletion-policy"] == "abandon", kind
    sink = rendered.one("LoggingLogSink")["spec"]
    # The same filter `custos logging provision` writes, log name escaping included.
    assert sink["filter"] == log_filter(project, log)
    destination = sink["destination"]["loggingLogBucketRef"]["external"]
    assert destination == "logging.googleapis.com/" + bucket_path(project, "global", "phi-audit")
    assert rendered.one("LoggingLogExclusion")["spec"]["filter"] == log_filter(project, log)

    grants = {m["spec"]["role"]: m["spec"] for m in rendered.kinds("IAMPolicyMember")}
    writer = grants["roles/logging.logWriter"]
    assert writer["member"] == f"serviceAccount:custos-audit@{project}.iam.gserviceaccount.com"
    assert writer["resourceRef"] == {"kind": "Project", "external": f"projects/{project}"}
    identity = grants["roles/iam.workloadIdentityUser"]
    assert identity["member"] == "serviceAccount:clinic-gke-prod.svc.id.goog[mcp/clinic-custos]"
    assert identity["resourceRef"]["kind"] == "IAMServiceAccount"


# The spec fields each Config Connector kind defines (from its CRD, which lives in the
# cluster, not here), and those it requires: a typo would otherwise reach the API server.
CONFIG_CONNECTOR_FIELDS = {
    "LoggingLogBucket": (
        {"billingAccountRef", "description", "enableAnalytics", "folderRef", "location",
         "locked", "organizationRef", "projectRef", "resourceID", "retentionDays"},
        {"location", "projectRef"},
    ),
    "LoggingLogSink": (
        {"bigqueryOptions", "description", "destination", "disabled", "exclusions", "filter",
         "folderRef", "includeChildren", "organizationRef", "projectRef", "resourceID",
         "uniqueWriterIdentity"},
        {"destination", "projectRef"},
    ),
    "LoggingLogExclusion": (
        {"billingAccountRef", "description", "disabled", "filter", "folderRef",
         "organizationRef", "projectRef", "resourceID"},
        {"filter", "projectRef"},
    ),
    "IAMPolicyMember": (
        {"condition", "member", "memberFrom", "resourceRef", "role"},
        {"member", "resourceRef", "role"},
    ),
}  # fmt: skip


def test_config_connector_resources_use_only_fields_their_kinds_define() -> None:
    values = merged(
        required_values(),
        {
            "configConnector": {"enabled": True},
            "serviceAccount": {"gcpServiceAccount": "a@clinic-audit-prod.iam.gserviceaccount.com"},
        },
    )
    documents = [
        d for d in render(values).documents if ".cnrm.cloud.google.com/" in d["apiVersion"]
    ]
    assert {d["kind"] for d in documents} == set(CONFIG_CONNECTOR_FIELDS)
    for document in documents:
        known, required = CONFIG_CONNECTOR_FIELDS[document["kind"]]
        fields = set(document["spec"])
        assert fields <= known, (document["kind"], fields - known)
        assert required <= fields, (document["kind"], required - fields)
        assert document["apiVersion"].endswith("/v1beta1")


def test_config_connector_is_off_by_default() -> None:
    rendered = render(required_values())
    assert not [d for d in rendered.documents if "cnrm.cloud.google.com" in d["apiVersion"]]


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"mcpServer": {"port": 8080}}, "mcpServer.port and ports.envoy are both 8080"),
        ({"ports": {"extproc": 9001}}, "ports.extauthz and ports.extproc are both 9001"),
        ({"ports": {"shipperHealth": 9902}}, "ports.envoyReady and ports.shipperHealth are both"),
        ({"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3}}, "minReplicas"),
        ({"mcpServer": {"preStopSleepSeconds": 40}}, "terminationGracePeriodSeconds"),
        ({"resources": {"envoy": {"limits": {"memory": "200Mi"}}}}, "envoy.maxHeapBytes"),
        ({"envoy": {"maxHeapBytes": 200 * 1_048_576}}, "envoy.maxHeapBytes"),
        (
            {
                "configConnector": {"enabled": True},
                "serviceAccount": {
                    "create": False,
                    "gcpServiceAccount": "a@clinic-audit-prod.iam.gserviceaccount.com",
                },
            },
            "serviceAccount.name",
        ),
    ],
)
def test_values_that_do_not_go_together_are_refused(bad: dict[str, Any], named: str) -> None:
    assert named in render_error(merged(required_values(), bad))
