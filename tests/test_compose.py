"""compose.yaml and the Dockerfile, checked structurally (no Docker engine on the development machines): the
services and their order of start, healthchecks, credentials only from .env, nothing published beyond
127.0.0.1, and commands that the sweeplab CLI really accepts."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import REPO

from sweeplab.cli import _parser

COMPOSE = yaml.safe_load((REPO / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)


def _interpolated(text: str) -> set[str]:
    return set(re.findall(r"\$\{(\w+)", text))


def test_services_start_in_order_of_health() -> None:
    assert set(SERVICES) == {"postgres", "mlflow", "init", "worker"}
    assert SERVICES["mlflow"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert SERVICES["init"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "mlflow": {"condition": "service_healthy"},
    }
    assert SERVICES["worker"]["depends_on"]["init"] == {"condition": "service_completed_successfully"}
    assert SERVICES["init"]["restart"] == "no" and "replicas" in SERVICES["worker"]["deploy"]


def test_healthchecks_probe_the_services() -> None:
    assert "pg_isready" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    assert "5000/health" in " ".join(SERVICES["mlflow"]["healthcheck"]["test"])


def test_postgres_and_artifacts_live_in_named_volumes() -> None:
    assert "postgres:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]
    assert "artifacts:/artifacts" in SERVICES["mlflow"]["volumes"]
    assert {"postgres", "artifacts", "data"} <= set(COMPOSE["volumes"])
    server = SERVICES["mlflow"]["command"]
    assert "--serve-artifacts" in server and "--artifacts-destination=/artifacts" in server
    assert any(arg.startswith("--backend-store-uri=postgresql+psycopg://") for arg in server)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_host_ports_bind_loopback_only(name: str) -> None:
    for port in SERVICES[name].get("ports", []):
        assert str(port).startswith("127.0.0.1:"), port


def _secret_values(node: object, path: str = "") -> list[str]:
    """Every value under a key that names a secret, anywhere in the file, which is not a ${VARIABLE} reference."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if SECRET_KEY.search(str(key)) and not (isinstance(value, str) and value.startswith("${")):
                found.append(f"{path}/{key}")
            found += _secret_values(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found += _secret_values(item, f"{path}/{index}")
    return found


def test_no_secret_values_only_references_to_the_env_file() -> None:
    assert _secret_values(COMPOSE) == []
    text = re.sub(r"\$\{[^}]*\}", "VARIABLE", (REPO / "compose.yaml").read_text())
    assert not re.search(r"://[^/\s@]+:[^/\s@]+@", text)  # no user:password@ in any URL
    for name in ("postgres", "init", "worker", "mlflow"):
        assert SERVICES[name]["env_file"] == ".env"
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()
    assert ".env" in (REPO / ".dockerignore").read_text().splitlines()


def test_every_variable_is_documented_in_env_example() -> None:
    example = (REPO / ".env.example").read_text()
    documented = set(re.findall(r"^(\w+)=", example, re.MULTILINE))
    assert _interpolated((REPO / "compose.yaml").read_text()) <= documented
    assert re.search(r"^POSTGRES_PASSWORD=$", example, re.MULTILINE)  # the example holds no password


@pytest.mark.parametrize("name", ["init", "worker"])
def test_worker_commands_parse_with_the_sweeplab_cli(name: str) -> None:
    command = [re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", arg) for arg in SERVICES[name]["command"]]
    args = _parser().parse_args(command)
    assert args.command == "worker" and (REPO / args.study).is_file()
    assert args.create_only == (name == "init")
    environment = SERVICES[name]["environment"]
    assert environment["SWEEPLAB_STORAGE"].startswith("postgresql+psycopg://")
    assert environment["SWEEPLAB_TRACKING_URI"] == "http://mlflow:5000"


def test_dockerfile_builds_a_cpu_image_that_runs_unprivileged() -> None:
    lines = [line for line in (REPO / "Dockerfile").read_text().splitlines() if line and not line.startswith("#")]
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in lines
    assert [line for line in lines if line.startswith("USER ")][-1] == "USER sweeplab"
    assert 'ENTRYPOINT ["sweeplab"]' in lines
