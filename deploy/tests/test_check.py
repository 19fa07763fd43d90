"""The deployment checks catch what they are for: each rule broken once on a real render."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import check

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def rendered() -> list[Doc]:
    return check.render("single-node")


def broken(docs: list[Doc], kind: str, name: str, change: Callable[[Doc], object]) -> list[Doc]:
    """A deep copy of `docs` with `change` applied to one object (by kind and name prefix)."""
    out = copy.deepcopy(docs)
    matches = [d for d in out if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(matches) == 1, (kind, name)
    change(matches[0])
    return out


def container(doc: Doc) -> Doc:
    first: Doc = doc["spec"]["template"]["spec"]["containers"][0]
    return first


def test_a_render_passes_every_rule(rendered: list[Doc]) -> None:
    assert check.check_kubernetes_docs(rendered, "x") == []


def test_an_unknown_field_fails_the_schema(rendered: list[Doc]) -> None:
    docs = broken(rendered, "StatefulSet", "llm-server", lambda d: d["spec"].update(replica=2))
    assert any("replica" in p for p in check.validate_schemas(docs, "x"))


def test_a_wrong_type_fails_the_schema(rendered: list[Doc]) -> None:
    docs = broken(rendered, "Deployment", "gateway", lambda d: d["spec"].update(replicas="two"))
    assert any("'two' is not of type 'integer'" in p for p in check.validate_schemas(docs, "x"))


def test_web_reaching_the_llm_servers_is_caught(rendered: list[Doc]) -> None:
    def let_web_in(policy: Doc) -> None:
        policy["spec"]["ingress"][0]["from"].append(
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}}}
        )

    docs = broken(rendered, "NetworkPolicy", "llm-server", let_web_in)
    assert check.check_network_policies(docs, "x") == [
        "x: StatefulSet/llm-server is reachable from pods:gateway, pods:web; expected pods:gateway"
    ]


def test_a_missing_policy_leaves_the_pod_open(rendered: list[Doc]) -> None:
    docs = [
        d
        for d in rendered
        if not (
            d["kind"] == "NetworkPolicy"
            and d["metadata"]["name"] in ("redis", "default-deny-ingress")
        )
    ]
    assert check.check_network_policies(docs, "x") == [
        "x: Deployment/redis is reachable from everyone; expected pods:gateway"
    ]


def test_an_open_ingress_rule_is_caught(rendered: list[Doc]) -> None:
    docs = broken(
        rendered, "NetworkPolicy", "postgres", lambda d: d["spec"]["ingress"][0].pop("from")
    )
    assert "reachable from anyone" in check.check_network_policies(docs, "x")[0]


def test_a_probe_on_a_path_the_service_does_not_serve_is_caught(rendered: list[Doc]) -> None:
    docs = broken(
        rendered,
        "Deployment",
        "gateway",
        lambda d: container(d)["livenessProbe"]["httpGet"].update(path="/health/live"),
    )
    assert check.check_probes(docs, "x") == [
        "x: Deployment/gateway livenessProbe must GET /health, not /health/live"
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["securityContext"].update(readOnlyRootFilesystem=False), "readOnlyRoot"),
        (lambda c: c["securityContext"].update(allowPrivilegeEscalation=True), "Escalation"),
        (lambda c: c["securityContext"]["capabilities"].update(add=["NET_RAW"]), "drop ALL"),
        (lambda c: c["securityContext"].update(runAsUser=0), "non-root"),
        (lambda c: c["resources"].pop("limits"), "memory limit"),
    ],
)
def test_pod_hardening_is_enforced(
    rendered: list[Doc], change: Callable[[Doc], object], message: str
) -> None:
    docs = broken(rendered, "Deployment", "web", lambda d: change(container(d)))
    problems = check.check_pod_security(docs, "x")
    assert len(problems) == 1
    assert message in problems[0]


def test_a_world_readable_secret_volume_is_caught(rendered: list[Doc]) -> None:
    def mode_0644(doc: Doc) -> None:
        doc["spec"]["template"]["spec"]["volumes"][0]["secret"]["defaultMode"] = 0o644

    docs = broken(rendered, "Deployment", "gateway", mode_0644)
    assert check.check_references(docs, "x") == [
        "x: Deployment/gateway: volume secrets must not be world-readable"
    ]


def test_a_file_variable_without_its_secret_key_is_caught(rendered: list[Doc]) -> None:
    def wrong_key(doc: Doc) -> None:
        container(doc)["env"][0]["value"] = "/run/secrets/no-such-key"

    docs = broken(rendered, "Deployment", "gateway", wrong_key)
    assert check.check_references(docs, "x") == [
        "x: Deployment/gateway: AUTH_SECRET_FILE=/run/secrets/no-such-key is no mounted secret key"
    ]


def test_a_file_variable_the_service_does_not_read_is_caught(rendered: list[Doc]) -> None:
    def unsupported(doc: Doc) -> None:
        container(doc)["env"].append(
            {"name": "LLM_MODEL_PATH_FILE", "value": "/run/secrets/llm-server-token"}
        )

    docs = broken(rendered, "StatefulSet", "llm-server", unsupported)
    assert check.check_references(docs, "x") == [
        "x: StatefulSet/llm-server: llm-server does not read LLM_MODEL_PATH_FILE"
    ]


def test_the_services_file_secret_lists_are_read() -> None:
    assert check.supported_file_secrets("llm-server") == {"LLM_SERVER_TOKEN_FILE"}
    assert {"AUTH_SECRET_FILE", "DATABASE_URL_FILE", "REDIS_URL_FILE"} <= (
        check.supported_file_secrets("gateway")
    )


def compose() -> Doc:
    doc: Doc = yaml.safe_load((check.HERE / "compose.yaml").read_text())
    return doc


def test_compose_file_variables_must_name_a_mounted_secret() -> None:
    doc = compose()
    doc["services"]["gateway"]["secrets"].remove("redis-url")
    doc["services"]["gateway"]["environment"]["GATEWAY_PORT_FILE"] = "/run/secrets/auth-secret"
    assert check.check_compose_doc(doc) == [
        "compose.yaml: gateway REDIS_URL_FILE=/run/secrets/redis-url is no secret it mounts",
        "compose.yaml: gateway does not read GATEWAY_PORT_FILE",
    ]


def test_compose_secrets_must_be_declared_and_written() -> None:
    doc = compose()
    doc["secrets"]["smtp-password"] = {"file": "./secrets/smtp-password"}
    doc["services"]["web"]["secrets"] = ["nope"]
    doc["services"]["gateway"]["ports"] = ["4000:4000"]
    assert check.check_compose_doc(doc) == [
        "compose.yaml: secret smtp-password is no file new-secrets.sh writes",
        "compose.yaml: only web publishes a port (gateway does)",
        "compose.yaml: web uses undeclared secret nope",
    ]


def test_hadolint_failures_are_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.Dockerfile").write_text("FROM debian:latest\nRUN cd /tmp && make\n")
    problems = check.check_dockerfiles(tmp_path)
    assert any("DL3007" in p for p in problems)  # :latest
    assert any("DL3003" in p for p in problems)  # cd instead of WORKDIR
    assert "bad.Dockerfile: no bad.Dockerfile.dockerignore beside it" in problems


# ---------------------------------------------------------------- Grafana dashboards


def dashboard(name: str) -> Doc:
    doc: Doc = json.loads((check.GRAFANA / "dashboards" / name).read_text())
    return doc


def test_the_dashboards_query_only_metrics_the_services_define() -> None:
    assert check.check_dashboards() == []


def test_a_dashboard_querying_a_metric_nobody_defines_is_caught() -> None:
    doc = dashboard("llm-server.json")
    doc["panels"][0]["targets"][0]["expr"] = 'sum(rate(llm_kv_cache_usage_ratio{a="b"}[5m]))'
    known = {s: check.defined_metrics(s) for s in check.METRIC_SOURCES}
    assert check.check_dashboard(doc, "x", known) == [
        "x: panel 'Tokens/s' queries llm_kv_cache_usage_ratio, which neither the gateway nor "
        "llm-server defines"
    ]


def test_a_metric_renamed_in_the_source_breaks_its_dashboard() -> None:
    known = {s: check.defined_metrics(s) for s in check.METRIC_SOURCES}
    assert "gateway_cache_lookups_total" in known["gateway"]
    known["gateway"].discard("gateway_cache_lookups_total")
    problems = check.check_dashboard(dashboard("gateway.json"), "x", known)
    assert problems
    assert all("gateway_cache_lookups_total" in p for p in problems)


def test_the_metric_names_a_promql_expression_reads() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, route) "
        '(rate(llm_inter_token_seconds_bucket{route=~"a|b", instance=~"$instance"}'
        "[$__rate_interval]))) / on (instance) group_left "
        "clamp_min(sum(gateway_queue_waiting offset 5m), 1e-9) or vector(0)"
    )
    assert check.queried_metrics(expr) == {
        "llm_inter_token_seconds_bucket",
        "gateway_queue_waiting",
    }


def test_prometheus_client_counters_and_histograms_expose_their_series() -> None:
    names = check.defined_metrics("llm-server")
    assert {"llm_requests_total", "llm_time_to_first_token_seconds_bucket"} <= names
    assert "llm_requests" not in names
    assert "gateway_http_request_duration_seconds_count" in check.defined_metrics("gateway")


def test_an_opt_in_service_may_publish_on_loopback_only() -> None:
    doc = compose()
    assert check.check_compose_doc(doc) == []
    doc["services"]["grafana"]["ports"] = ["3001:3000"]
    assert check.check_compose_doc(doc) == [
        "compose.yaml: only web publishes a port (grafana does)"
    ]
