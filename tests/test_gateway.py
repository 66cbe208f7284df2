"""deploy/otel-gateway: the OpenTelemetry Collector gateway config, checked without a collector.

No otelcol binary can be installed here and no schema of the Collector's configuration is published
as a package, so deploy/otel-gateway/config.schema.json (hand-written, JSON Schema 2020-12) covers
the components the gateway uses with the keys of their upstream configuration, and refuses any
other component or key. This file validates the config with it, checks what a schema cannot
(every component a pipeline names is defined, the queue's storage and the authenticator are
enabled extensions), checks the resolver finds the collector Service the Helm chart renders, and
validates the Kubernetes manifests. What is not checked: that otelcol itself loads the config.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.test_deploy import _HELM_CHILD, CHART, KUBE_MIN, _docs, _one, _require_package, _secrets

GATEWAY = Path(__file__).resolve().parent.parent / "deploy" / "otel-gateway"
CONFIG = yaml.safe_load((GATEWAY / "config.yaml").read_text())
SCHEMA = json.loads((GATEWAY / "config.schema.json").read_text())


def schema_errors(config: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return ["/".join(map(str, e.absolute_path)) + ": " + e.message for e in validator.iter_errors(config)]


def reference_errors(config: dict[str, Any]) -> list[str]:
    """What the schema cannot express: names that must point at defined, enabled components."""
    out: list[str] = []
    service = config["service"]
    enabled = set(service["extensions"])
    out += [f"service.extensions: {e} is not defined" for e in enabled - set(config.get("extensions", {}))]
    for name, pipeline in service["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for comp in pipeline.get(kind, []):
                if comp not in config.get(kind, {}):
                    out.append(f"pipeline {name}: {kind[:-1]} {comp} is not defined")
    for name, exporter in config["exporters"].items():
        storage = exporter.get("sending_queue", {}).get("storage")
        if storage and storage not in enabled:
            out.append(f"{name}: sending_queue.storage {storage} is not an enabled extension")
        auth = exporter.get("protocol", {}).get("otlp", {}).get("auth", {}).get("authenticator")
        if auth and auth not in enabled:
            out.append(f"{name}: authenticator {auth} is not an enabled extension")
    return out


def test_the_gateway_config_validates() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert schema_errors(CONFIG) == []
    assert reference_errors(CONFIG) == []


def test_what_driftline_needs_of_the_gateway() -> None:
    lb = CONFIG["exporters"]["loadbalancing"]
    assert lb["routing_key"] == "traceID"
    # The persistent queue sits above the routing, on a file_storage extension; retries never stop.
    queue = lb["sending_queue"]
    assert queue["enabled"] and CONFIG["extensions"][queue["storage"]]["directory"] == "/var/lib/otelcol/queue"
    assert lb["retry_on_failure"]["enabled"] and lb["retry_on_failure"]["max_elapsed_time"] == "0s"
    otlp = lb["protocol"]["otlp"]
    assert otlp["sending_queue"] == {"enabled": False} and otlp["retry_on_failure"] == {"enabled": False}
    # Each request keeps its application's key: the receiver keeps headers, the exporter re-sends it.
    assert all(p["include_metadata"] for p in CONFIG["receivers"]["otlp"]["protocols"].values())
    setter = CONFIG["extensions"][otlp["auth"]["authenticator"]]["headers"]
    assert setter == [{"action": "upsert", "key": "authorization", "from_context": "authorization"}]
    # Nothing batches requests of different keys together.
    processors = [p for pl in CONFIG["service"]["pipelines"].values() for p in pl.get("processors", [])]
    assert not [p for p in processors if p.split("/")[0] == "batch"]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("exporters", "loadbalancing", "routing_key"), "service", "'traceID' was expected"),
        (("exporters", "loadbalancing", "sending_queue", "sorage"), "file_storage/queue", "'sorage' was unexpected"),
        (("receivers", "otlp", "protocols", "grpc", "include_metadata"), False, "True was expected"),
        (("exporters", "loadbalancing", "timeout"), "10 seconds", "does not match"),
        (("exporters", "loadbalancing", "resolver", "dns"), {"hostname": "x"}, "has too many properties"),
        (("processors", "batch"), {"timeout": "1s"}, "'metadata_keys' is a required property"),
        (("exporters", "kafka"), {"brokers": ["k:9092"]}, "'kafka' does not match any of the regexes"),
    ],
)
def test_the_schema_refuses_what_driftline_cannot_use(path: tuple[str, ...], value: Any, expected: str) -> None:
    bad = copy.deepcopy(CONFIG)
    node = bad
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = schema_errors(bad)
    assert any(expected in e for e in errors), errors


def test_references_are_checked() -> None:
    bad = copy.deepcopy(CONFIG)
    bad["service"]["extensions"].remove("file_storage/queue")
    bad["service"]["pipelines"]["traces"]["processors"].append("memory_limiter/two")
    assert reference_errors(bad) == [
        "pipeline traces: processor memory_limiter/two is not defined",
        "loadbalancing: sending_queue.storage file_storage/queue is not an enabled extension",
    ]


def test_the_resolver_finds_the_charts_collector_service() -> None:
    """The k8s resolver names <service>.<namespace> and the gRPC port: both must be what the chart
    renders for release "driftline" in namespace "observability" (the README's install)."""
    _require_package("helm_python", "helm-python-sdk")
    job = {"default": {"op": "render", "values": _secrets()}}
    proc = subprocess.run(
        [sys.executable, "-c", _HELM_CHILD.replace('namespace="obs"', 'namespace="observability"')],
        input=json.dumps({"chart": str(CHART), "jobs": job}),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    docs = _docs(json.loads(proc.stdout), "default")
    k8s = CONFIG["exporters"]["loadbalancing"]["resolver"]["k8s"]
    name, _, namespace = k8s["service"].partition(".")
    service = _one(docs, "Service", name)
    assert namespace == "observability"
    grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert k8s["ports"] == [grpc["port"]] and grpc["appProtocol"] == "grpc"


def test_gateway_manifests() -> None:
    _require_package("kubernetes_validate", "kubernetes_validate")
    import kubernetes_validate

    docs = [d for d in yaml.safe_load_all((GATEWAY / "kubernetes.yaml").read_text()) if d]
    for doc in docs:
        for version in (KUBE_MIN, kubernetes_validate.utils.latest_version()):
            kubernetes_validate.validate(doc, version, strict=True)
    by_kind = {d["kind"]: d for d in docs}
    assert yaml.safe_load(by_kind["ConfigMap"]["data"]["config.yaml"]) == CONFIG, "kubernetes.yaml's copy is stale"
    sts = by_kind["StatefulSet"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert "--feature-gates=exporter.PersistRequestContext" in container["args"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    queue_dir = CONFIG["extensions"]["file_storage/queue"]["directory"]
    assert mounts["queue"] == queue_dir
    assert [c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]] == ["queue"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    protocols = CONFIG["receivers"]["otlp"]["protocols"]
    assert ports["otlp-grpc"] == int(protocols["grpc"]["endpoint"].rsplit(":", 1)[1])
    assert ports["otlp-http"] == int(protocols["http"]["endpoint"].rsplit(":", 1)[1])
    assert ports["health"] == int(CONFIG["extensions"]["health_check"]["endpoint"].rsplit(":", 1)[1])
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])) for r in by_kind["Role"]["rules"]}
    assert (("discovery.k8s.io",), ("endpointslices",)) in rules
