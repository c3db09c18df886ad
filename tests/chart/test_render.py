"""The chart renders, lints clean and validates against the Kubernetes API schemas for every
value set, and what it renders is the pod the chart promises: native sidecars in order,
hardened containers, the rules mounted so that updates reach them, Envoy's port alone
exposed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from custos.audit.config import load_audit_config
from custos.policy import load_policy
from extauthz.config import load_config
from extproc.masking.config import load_masking_config
from tests.chart.chart import (
    FULLNAME,
    KUBERNETES_VERSIONS,
    SIDECARS,
    VALUE_SETS,
    Rendered,
    lint,
    merged,
    render,
    required_values,
)

CUSTOS_KINDS = {"ConfigMap", "Deployment", "Service", "ServiceAccount", "NetworkPolicy", "Pod"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, Rendered]:
    return {name: render(values) for name, values in VALUE_SETS.items()}


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod["initContainers"], *pod["containers"]]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_helm_lint_is_clean(name: str) -> None:
    report = lint(VALUE_SETS[name])
    assert report["errors"] == []
    # Severity 1 is information ("icon is recommended"); 2 and 3 are warnings and errors.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_manifest_validates_against_kubernetes(
    rendered: dict[str, Rendered], name: str, version: str
) -> None:
    checked = 0
    for document in rendered[name].documents:
        if ".cnrm.cloud.google.com/" in document["apiVersion"]:
            # Config Connector's kinds have no schema here (their CRDs live in the cluster):
            # test_values checks what they say, not their field names.
            continue
        # strict: a field Kubernetes does not know (a typo, a field of a newer version)
        # fails here instead of being dropped by the API server.
        kubernetes_validate.validate(document, version, strict=True)
        checked += 1
    assert checked >= len(CUSTOS_KINDS)


def test_the_value_sets_render_what_they_select(rendered: dict[str, Rendered]) -> None:
    assert {d["kind"] for d in rendered["defaults"].documents} >= CUSTOS_KINDS | {
        "PodDisruptionBudget"
    }
    assert not rendered["defaults"].kinds("HorizontalPodAutoscaler")
    hpa = rendered["autoscaling"].one("HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    assert hpa["spec"]["scaleTargetRef"]["name"] == FULLNAME
    # With an autoscaler the Deployment leaves the count to it (an upgrade would reset it).
    assert "replicas" not in rendered["autoscaling"].workload["spec"]
    assert rendered["defaults"].workload["spec"]["replicas"] == 2


@pytest.mark.parametrize("name", VALUE_SETS)
def test_custos_runs_as_native_sidecars_started_before_the_mcp_server(
    rendered: dict[str, Rendered], name: str
) -> None:
    pod = rendered[name].pod
    assert [c["name"] for c in pod["initContainers"]] == list(SIDECARS)
    for sidecar in pod["initContainers"]:
        assert sidecar["restartPolicy"] == "Always", sidecar["name"]
        # The next container starts only once this probe passes.
        assert "startupProbe" in sidecar, sidecar["name"]
    assert [c["name"] for c in pod["containers"]] == ["mcp-server"]
    image = rendered[name].values["mcpServer"]["image"]
    assert pod["containers"][0]["image"] == f"{image['repository']}:{image.get('tag', 'latest')}"


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_container_is_hardened(rendered: dict[str, Rendered], name: str) -> None:
    pod = rendered[name].pod
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    test_pod = rendered[name].one("Pod")
    for container in [*containers(pod), *test_pod["spec"]["containers"]]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, container["name"]
        assert context.get("privileged", False) is False, container["name"]
        assert container["resources"]["requests"], container["name"]


def test_writable_volumes_are_the_spool_and_temp_only(rendered: dict[str, Rendered]) -> None:
    pod = rendered["inline-rules"].pod
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {
        (container["name"], mount["mountPath"])
        for container in containers(pod)
        for mount in container["volumeMounts"]
        if not mount.get("readOnly")
    }
    for container, path in writable:
        assert path in ("/tmp", "/var/spool/custos"), (container, path)
    for container, path in writable:
        name = next(
            m["name"]
            for c in containers(pod)
            if c["name"] == container
            for m in c["volumeMounts"]
            if m["mountPath"] == path
        )
        assert "emptyDir" in volumes[name]
    spool_writers = {c for c, p in writable if p == "/var/spool/custos"}
    assert spool_writers == {"shipper", "extauthz", "extproc"}
    assert volumes["spool"]["emptyDir"]["sizeLimit"] == "2048Mi"


@pytest.mark.parametrize("name", VALUE_SETS)
def test_rules_are_mounted_as_a_directory(rendered: dict[str, Rendered], name: str) -> None:
    pod = rendered[name].pod
    for container in containers(pod):
        for mount in container["volumeMounts"]:
            # A subPath mount is a copy the kubelet never updates: no hot reload.
            assert "subPath" not in mount and "subPathExpr" not in mount, container["name"]
    readers = {
        c["name"]
        for c in containers(pod)
        for m in c["volumeMounts"]
        if m["name"] == "rules" and m["mountPath"] == "/etc/custos/rules"
    }
    assert readers == {"extauthz", "extproc"}


def test_rules_come_inline_or_from_an_existing_configmap(rendered: dict[str, Rendered]) -> None:
    inline = rendered["inline-rules"]
    rules = inline.one("ConfigMap", f"{FULLNAME}-rules")
    assert "readers-read-patients" in rules["data"]["policy.yaml"]
    assert "pseudonym_key" in rules["data"]["masking.yaml"]
    volume = next(v for v in inline.pod["volumes"] if v["name"] == "rules")
    assert volume["configMap"]["name"] == f"{FULLNAME}-rules"

    existing = rendered["existing-configmap"]
    assert not [c for c in existing.kinds("ConfigMap") if c["metadata"]["name"].endswith("rules")]
    volume = next(v for v in existing.pod["volumes"] if v["name"] == "rules")
    assert volume["configMap"]["name"] == "clinic-rules"
    # A ConfigMap without both keys keeps the pod from starting, rather than running
    # without rules.
    assert [i["key"] for i in volume["configMap"]["items"]] == ["policy.yaml", "masking.yaml"]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_the_service_exposes_envoy_only(rendered: dict[str, Rendered], name: str) -> None:
    service = rendered[name].one("Service", FULLNAME)
    assert service["spec"]["type"] == "ClusterIP"
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["mcp"]
    pod = rendered[name].pod
    named = {
        p["name"]: (c["name"], p["containerPort"])
        for c in containers(pod)
        for p in c.get("ports", [])
    }
    assert named["mcp"] == ("envoy", 8080)
    # The MCP server declares no port: it listens on loopback, behind Envoy.
    assert "ports" not in pod["containers"][0]


def test_the_test_hook_is_not_part_of_the_release(rendered: dict[str, Rendered]) -> None:
    """Created by `helm test` only, and never counted as one of the Deployment's pods (a
    failed test pod stays, and would block drains through the PodDisruptionBudget)."""
    hooks = [
        d for d in rendered["autoscaling"].documents
        if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    ]  # fmt: skip
    assert sorted(d["kind"] for d in hooks) == ["Pod", "Service"]
    selector = rendered["autoscaling"].workload["spec"]["selector"]["matchLabels"]
    for hook in hooks:
        labels = hook["metadata"]["labels"]
        assert not selector.items() <= labels.items(), hook["kind"]
    pods = next(h for h in hooks if h["kind"] == "Service")
    assert pods["spec"]["clusterIP"] == "None"  # names the pods' addresses, proxies nothing
    assert pods["spec"]["selector"] == selector
    policy = rendered["autoscaling"].one("NetworkPolicy")["spec"]["ingress"][0]["from"]
    test_pod = next(h for h in hooks if h["kind"] == "Pod")
    assert {"podSelector": {"matchLabels": {k: test_pod["metadata"]["labels"][k] for k in (
        "app.kubernetes.io/name", "app.kubernetes.io/instance")}}} in policy  # fmt: skip


def test_the_network_policy_admits_envoys_port_only(rendered: dict[str, Rendered]) -> None:
    default = rendered["defaults"].one("NetworkPolicy")["spec"]
    assert default["policyTypes"] == ["Ingress"]
    assert default["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]

    scoped = rendered["autoscaling"].one("NetworkPolicy")["spec"]["ingress"]
    assert scoped[0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert {"namespaceSelector": {"matchLabels": {"team": "agents"}}} in scoped[0]["from"]
    # Metrics only to the peers named for them.
    assert scoped[1]["from"] == [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    assert {p["port"] for p in scoped[1]["ports"]} == {9002, 9004, 9106}


def test_probes_reach_health_ports_not_the_data_ports(rendered: dict[str, Rendered]) -> None:
    pod = rendered["defaults"].pod
    by_name = {c["name"]: c for c in containers(pod)}
    for service, port in (("extauthz", 9011), ("extproc", 9013)):
        assert by_name[service]["startupProbe"]["grpc"] == {"port": port}
        assert by_name[service]["readinessProbe"]["grpc"] == {"port": port}
        # Liveness asks whether the process answers, not whether it serves: a full spool
        # makes ext_proc refuse (not ready), which a restart would not mend.
        assert by_name[service]["livenessProbe"]["grpc"] == {"port": port, "service": "liveness"}
    assert by_name["shipper"]["livenessProbe"]["grpc"] == {"port": 9016}
    # Cloud Logging being away is not a reason to take the pod out of service.
    assert "readinessProbe" not in by_name["shipper"]
    envoy = by_name["envoy"]
    # Started and alive: Envoy itself. Ready: Envoy and the MCP server behind it, on the
    # serving port, where a GKE load balancer infers its health check from.
    assert envoy["startupProbe"]["httpGet"] == {"path": "/ready", "port": 9902}
    assert envoy["livenessProbe"]["httpGet"] == {"path": "/ready", "port": 9902}
    assert envoy["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "mcp"}
    authz = rendered["defaults"].config_file("extauthz.yaml")
    assert "listen: 127.0.0.1:9001" in authz
    assert "health_listen: 0.0.0.0:9011" in authz
    assert "--listen=127.0.0.1:9003" in by_name["extproc"]["args"]


def shipper_requests(rendered: Rendered) -> dict[str, str]:
    shipper = next(c for c in rendered.pod["initContainers"] if c["name"] == "shipper")
    return dict(shipper["resources"]["requests"])


def test_the_spool_is_declared_to_the_scheduler(rendered: dict[str, Rendered]) -> None:
    # The spool (2048 MiB) and five /tmp directories (64 MiB each).
    assert shipper_requests(rendered["defaults"])["ephemeral-storage"] == "2368Mi"
    assert shipper_requests(rendered["defaults"])["cpu"] == "50m"


def test_a_persistent_spool_is_a_volume_each_pod_keeps(rendered: dict[str, Rendered]) -> None:
    persistent = rendered["persistent-spool"]
    workload = persistent.workload
    assert workload["kind"] == "StatefulSet"
    (claim,) = workload["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "spool"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2048Mi"
    assert claim["spec"]["storageClassName"] == "premium-rwo"
    # Neither deleting the release nor scaling down deletes a volume with records on it.
    retention = workload["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert retention == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert "spool" not in {v["name"] for v in persistent.pod["volumes"]}
    assert shipper_requests(persistent)["ephemeral-storage"] == "320Mi"  # /tmp only
    hpa = render(merged(persistent.values, {"autoscaling": {"enabled": True}}))
    assert hpa.one("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"


def test_workload_identity_and_secrets(rendered: dict[str, Rendered]) -> None:
    account = rendered["config-connector"].one("ServiceAccount")
    assert account["metadata"]["annotations"] == {
        "iam.gke.io/gcp-service-account": "custos-audit@clinic-audit-prod.iam.gserviceaccount.com"
    }
    assert "defaults" in rendered and "WARNING" in rendered["defaults"].notes
    assert "WARNING" not in rendered["config-connector"].notes

    pod = rendered["inline-rules"].pod
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["signing-key"]["secret"]["secretName"] == "custos-signing-key"
    assert volumes["upstream-credential"]["secret"]["secretName"] == "patients-mcp-token"
    extproc = next(c for c in pod["initContainers"] if c["name"] == "extproc")
    assert extproc["env"] == [
        {
            "name": "CUSTOS_PSEUDONYM_KEY",
            "valueFrom": {"secretKeyRef": {"name": "custos-pseudonym-key", "key": "pseudonym-key"}},
        }
    ]
    assert "upstream_credential" in rendered["inline-rules"].config_file("extauthz.yaml")
    assert "upstream_credential" not in rendered["defaults"].config_file("extauthz.yaml")


def test_a_configuration_change_rolls_the_pods_and_a_rules_change_does_not() -> None:
    def checksum(values: dict[str, Any]) -> str:
        template = render(values).one("Deployment")["spec"]["template"]
        return str(template["metadata"]["annotations"]["checksum/config"])

    base = required_values()
    assert checksum(base) != checksum(merged(base, {"audit": {"whenFull": "serve"}}))
    stricter = merged(base, {"rules": {"policy": {"rules": []}}})
    assert checksum(base) == checksum(stricter)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_the_services_accept_what_the_chart_renders(
    rendered: dict[str, Rendered], name: str, tmp_path: Path
) -> None:
    """Loaded by the services' own loaders, which refuse unknown keys and bad values."""
    files = {file: rendered[name].config_file(file) for file in ("extauthz.yaml", "audit.yaml")}
    rules = [
        c for c in rendered[name].kinds("ConfigMap") if c["metadata"]["name"].endswith("-rules")
    ]
    for config_map in rules:
        files.update(config_map["data"])
    for file, text in files.items():
        (tmp_path / file).write_text(text)
    authz = load_config(tmp_path / "extauthz.yaml")
    assert authz.health_listen is not None
    assert load_audit_config(tmp_path / "audit.yaml").shipping is not None
    if rules:
        assert load_policy(tmp_path / "policy.yaml").rules
        load_masking_config(tmp_path / "masking.yaml")
