"""Rendering the Helm chart in k8s/ with Helm's own engine (the helm-python-sdk binds the
Helm Go SDK; no helm binary), and the value sets the chart's tests render it with."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.readme import yaml_file

helm = pytest.importorskip("helm_python", reason="helm-python-sdk has no wheel for this platform")
helm.disable_logging()  # it logs each symbolic link it follows at INFO

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHART = PROJECT_ROOT / "k8s" / "custos"
EXAMPLES = PROJECT_ROOT / "examples"
RELEASE = "clinic"
NAMESPACE = "mcp"
FULLNAME = "clinic-custos"
# The oldest Kubernetes the chart supports (Chart.yaml's kubeVersion) and a current GKE one.
KUBERNETES_VERSIONS = ("1.30.0", "1.35.0")
SIDECARS = ("shipper", "extauthz", "extproc", "envoy")

Values = dict[str, Any]


def required_values() -> Values:
    """What an installer must give; everything else has a default."""
    return {
        "image": {"repository": "registry.example/clinic/custos"},
        "mcpServer": {"image": {"repository": "registry.example/clinic/patients-mcp"}},
        "publicUrl": "https://mcp.clinic.example",
        "oidc": {"issuers": [{"issuer": "https://login.clinic.example", "audience": "mcp"}]},
        "audit": {"signingKey": {"existingSecret": "custos-signing-key"}},
        "cloudLogging": {"project": "clinic-audit-prod"},
    }


def merged(*layers: Values) -> Values:
    out: Values = {}
    for layer in layers:
        _merge(out, copy.deepcopy(layer))
    return out


def _merge(into: Values, layer: Values) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def example_rules() -> Values:
    return {
        "rules": {
            "policy": yaml.safe_load((EXAMPLES / "policy.yaml").read_text()),
            "masking": yaml.safe_load((EXAMPLES / "masking.yaml").read_text()),
        }
    }


VALUE_SETS: dict[str, Values] = {
    "defaults": required_values(),
    "inline-rules": merged(
        required_values(),
        example_rules(),
        {
            "upstreamCredential": {"existingSecret": "patients-mcp-token"},
            "pseudonymKey": {"existingSecret": "custos-pseudonym-key"},
            "oidc": {
                "issuers": [
                    {
                        "issuer": "https://login.clinic.example/realms/staff",
                        "audience": "patients-mcp",
                        "groupsClaim": "realm_access.roles",
                    },
                    {"issuer": "https://accounts.google.com", "audience": "patients-mcp"},
                ]
            },
        },
    ),
    "existing-configmap": merged(
        required_values(), {"rules": {"existingConfigMap": "clinic-rules"}}
    ),
    "config-connector": merged(
        required_values(),
        {
            "configConnector": {"enabled": True},
            "serviceAccount": {
                "gcpServiceAccount": "custos-audit@clinic-audit-prod.iam.gserviceaccount.com"
            },
        },
    ),
    # What the README tells an installer to write.
    "readme": yaml_file("clinic.yaml"),
    "persistent-spool": merged(
        required_values(),
        {
            "audit": {
                "spool": {"volume": "persistentVolumeClaim", "storageClassName": "premium-rwo"}
            }
        },
    ),
    "autoscaling": merged(
        required_values(),
        {
            "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 12},
            "networkPolicy": {
                "from": [{"namespaceSelector": {"matchLabels": {"team": "agents"}}}],
                "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
            },
        },
    ),
}


@dataclass(frozen=True)
class Rendered:
    values: Values
    documents: list[dict[str, Any]]
    notes: str

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.kinds(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"{len(found)} {kind} named {name}"
        return found[0]

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.documents if d["kind"] == kind]

    @property
    def workload(self) -> dict[str, Any]:
        found = self.kinds("Deployment") + self.kinds("StatefulSet")
        assert len(found) == 1, [d["kind"] for d in found]
        return found[0]

    @property
    def pod(self) -> dict[str, Any]:
        return dict(self.workload["spec"]["template"]["spec"])

    def config_file(self, name: str) -> str:
        return str(self.one("ConfigMap", f"{FULLNAME}-config")["data"][name])


def render(values: Values) -> Rendered:
    """`helm template` as an install would run it; the schema is checked first, as Helm does."""
    chart = helm.Chart.load(CHART)
    chart.validate_schema(values)
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    documents: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        documents.extend(d for d in yaml.safe_load_all(text) if d)
    return Rendered(values, documents, notes)


def lint(values: Values) -> dict[str, Any]:
    result: dict[str, Any] = helm.lint(
        CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBERNETES_VERSIONS[-1]}"
    )
    return result


def schema_error(values: Values) -> str:
    """Helm's message for values the schema refuses; fails the test if they are accepted."""
    with pytest.raises(helm.HelmError) as refused:
        helm.Chart.load(CHART).validate_schema(values)
    return str(refused.value)


def render_error(values: Values) -> str:
    """The chart's own refusal (a `fail` in a template) of values the schema accepts."""
    with pytest.raises(helm.HelmError) as refused:
        render(values)
    return str(refused.value)
