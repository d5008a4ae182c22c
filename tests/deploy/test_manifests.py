"""The deployment files, checked offline: Kubernetes manifests against the Kubernetes API
schemas (kubernetes-validate), docker-compose.yml against the Compose Specification's
schema (deploy/schema). No cluster and no Docker engine needed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.catalog.settings import CatalogSettings
from services.indicators.settings import IndicatorsSettings
from services.matching.settings import MatchingSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.30.0"


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                docs.append((f"{name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return docs


DOCS = k8s_documents()
BY_KIND: dict[str, list[dict[str, Any]]] = {}
for _, _doc in DOCS:
    BY_KIND.setdefault(_doc["kind"], []).append(_doc)


@pytest.mark.parametrize("doc", [d for _, d in DOCS], ids=[n for n, _ in DOCS])
def test_every_manifest_is_valid_for_kubernetes(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_broken_manifest_is_caught() -> None:
    doc = json.loads(json.dumps(BY_KIND["Deployment"][0]))
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_workloads_have_probes_limits_budgets_and_autoscaling() -> None:
    deployments = {d["metadata"]["name"]: d for d in BY_KIND["Deployment"]}
    assert set(deployments) == {"catalog", "matching", "indicators", "portal"}
    for name, d in deployments.items():
        pod = d["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert c["env"] == [{"name": "SERVICE", "value": f"services.{name}.main"}]
    assert {h["spec"]["scaleTargetRef"]["name"] for h in BY_KIND["HorizontalPodAutoscaler"]} == {
        "matching",
        "portal",
    }
    assert {p["metadata"]["name"] for p in BY_KIND["PodDisruptionBudget"]} == set(deployments)
    assert {s["metadata"]["name"] for s in BY_KIND["Service"]} == set(deployments)
    (job,) = BY_KIND["Job"]
    command = " ".join(job["spec"]["template"]["spec"]["containers"][0]["command"])
    assert all(
        f"shared.migrate {s} upgrade" in command for s in ("catalog", "matching", "indicators")
    )


def test_the_config_map_names_only_settings_the_services_read() -> None:
    (config,) = BY_KIND["ConfigMap"]
    fields = {
        "CATALOG_": CatalogSettings.model_fields,
        "MATCHING_": MatchingSettings.model_fields,
        "INDICATORS_": IndicatorsSettings.model_fields,
    }
    from services.portal.settings import PortalSettings

    fields["PORTAL_"] = PortalSettings.model_fields
    for key, value in config["data"].items():
        prefix = next(p for p in fields if key.startswith(p))
        assert key[len(prefix) :].lower() in fields[prefix], key
        if "RATE_LIMIT" in key:  # the limits parse
            CatalogSettings(rate_limit_writes=value)


def compose() -> dict[str, Any]:
    text = (ROOT / "docker-compose.yml").read_text()
    # ${VAR:?message} and ${VAR:-default} as compose would interpolate them.
    env = {"TJP_DB_PASSWORD": "pw", "PORTAL_SECRET_KEY": "key"}

    def interpolate(m: re.Match[str]) -> str:
        name, op, rest = m.group(1), m.group(2), m.group(3)
        if name in env:
            return env[name]
        assert op == ":-", f"{name} has no default and is not set"
        return rest

    text = re.sub(r"\$\{([A-Z_]+)(?:(:[-?])([^}]*))?\}", interpolate, text)
    return yaml.safe_load(text)  # type: ignore[no-any-return]


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads((ROOT / "deploy" / "schema" / "compose_spec.json").read_text())
    jsonschema.validate(compose(), schema, cls=jsonschema.Draft201909Validator)
    broken = compose()
    broken["services"]["catalog"]["depends_on"] = {"migrate": {"condition": "whenever"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft201909Validator)


def test_compose_runs_migrations_first_and_takes_secrets_from_the_environment() -> None:
    services = compose()["services"]
    assert set(services) == {"db", "migrate", "catalog", "matching", "indicators", "portal",
                             "proxy"}  # fmt: skip
    for name in ("catalog", "matching", "indicators"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
        assert services[name]["environment"][f"{name.upper()}_MIGRATE_ON_STARTUP"] == "false"
        assert "healthcheck" in services[name]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    raw = (ROOT / "docker-compose.yml").read_text()
    assert "${TJP_DB_PASSWORD:?" in raw and "${PORTAL_SECRET_KEY:?" in raw
    # Production runs with the rate limits on.
    assert services["matching"]["environment"]["MATCHING_RATE_LIMIT_MATCHING"]
    assert not any("image" in s and "/" in s["image"] for s in services.values()), "no pulls"
