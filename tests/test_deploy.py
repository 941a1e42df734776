"""Offline checks of deploy/: Prometheus config and rules (promtool), the Grafana dashboard,
docker-compose.yml against the Compose schema, and the Dockerfiles."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from stream.runtime.metrics import Metrics
from tests.deploy_support import (
    DASHBOARD,
    DEPLOY,
    RULES,
    dashboard,
    dashboard_exprs,
    exported_names,
    metric_names_in,
    rule_exprs,
)

ROOT = DEPLOY.parent
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian: apt-get install prometheus)",
)


def promtool(*args: str) -> str:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def worker_exports() -> set[str]:
    return exported_names(generate_latest(Metrics(CollectorRegistry()).registry).decode())


# --- Prometheus ---------------------------------------------------------------------------


@needs_promtool
def test_promtool_accepts_the_scrape_config_and_rules() -> None:
    assert "SUCCESS" in promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert "SUCCESS: 9 rules found" in promtool("check", "rules", str(RULES))


@needs_promtool
def test_each_alert_rule_fires_on_its_synthetic_series() -> None:
    tests = DEPLOY / "prometheus" / "tests" / "fraudstream_test.yml"
    assert "SUCCESS" in promtool("test", "rules", str(tests))
    tested = set(re.findall(r"alertname: (\w+)", tests.read_text()))
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert alerts == tested  # no rule without a test


def test_rules_use_only_metrics_the_worker_exports() -> None:
    used = metric_names_in(rule_exprs())
    assert used and used <= worker_exports(), sorted(used - worker_exports())


def test_scrape_targets_are_the_compose_workers() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    workers = {n for n, s in compose()["services"].items() if _is_default_worker(s)}
    assert targets == {f"{w}:6066" for w in workers}


# --- Grafana ------------------------------------------------------------------------------

REQUIRED_PANELS = [
    "throughput",
    "lag",
    "event-to-alert latency",
    "alerts by kind",
    "dead letters",
    "model batch latency",
    "model version",
]


def test_dashboard_covers_the_on_call_questions() -> None:
    board = dashboard()
    titles = [p["title"].lower() for p in board["panels"]]
    for wanted in REQUIRED_PANELS:
        assert any(wanted in t for t in titles), wanted
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip()
            assert target["datasource"]["uid"] == datasource["uid"]
    _assert_no_overlap(board["panels"])


def _assert_no_overlap(panels: list[dict[str, Any]]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, (p["title"], cells.get((x, y)))
                cells[(x, y)] = p["title"]


def test_dashboard_queries_use_only_metrics_the_worker_exports() -> None:
    used = metric_names_in(dashboard_exprs())
    assert len(used) >= 10 and used <= worker_exports(), sorted(used - worker_exports())


@needs_promtool
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every query as a recording rule (Grafana variables substituted)."""
    subst = {"$__rate_interval": "1m", "$instance": ".*"}
    rules = []
    for i, expr in enumerate(dashboard_exprs()):
        for var, value in subst.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in promtool("check", "rules", str(path))


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "fraudstream.yml").read_text()
    )["providers"][0]
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert (ROOT / "deploy/grafana/dashboards" / DASHBOARD.name).is_file()


# --- docker-compose.yml -------------------------------------------------------------------

SCHEMA = Path(
    os.environ.get(
        "FRAUDSTREAM_COMPOSE_SCHEMA",
        Path.home() / ".cache" / "fraudstream" / "compose_spec.json",
    )
)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _is_default_worker(service: dict[str, Any]) -> bool:
    return service.get("command", [None])[0] == "worker" and "profiles" not in service


@pytest.mark.skipif(
    not SCHEMA.is_file(),
    reason=f"no Compose schema at {SCHEMA}; fetch it with `python3 scripts/compose_schema.py`",
)
def test_compose_file_matches_the_compose_schema() -> None:
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    validator.validate(compose())
    broken = compose()
    broken["services"]["kafka"]["imagee"] = "typo"
    with pytest.raises(jsonschema.ValidationError):  # the check can fail
        validator.validate(broken)


def test_compose_stack_shape() -> None:
    services = compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    workers = [s for s in services.values() if _is_default_worker(s)]
    assert len(workers) == 2
    # One consumer group over the same topics: the workers share the partitions.
    envs = [w["environment"] for w in workers]
    assert len({(e["FRAUDSTREAM_APP_ID"], e["FRAUDSTREAM_BROKER"]) for e in envs}) == 1
    assert all(e["FRAUDSTREAM_WEB_HOST"] == "0.0.0.0" for e in envs)
    host_ports = [p.split(":")[0] for w in workers for p in w["ports"]]
    assert len(host_ports) == len(set(host_ports))
    states = [v for w in workers for v in w["volumes"]]
    assert len(states) == len(set(states))  # each worker has its own RocksDB volume
    assert services["traffic"]["profiles"] == ["traffic"]
    for service in services.values():
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file()
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./deploy"):
                assert (ROOT / source).exists(), source


# --- Dockerfiles --------------------------------------------------------------------------

DOCKERFILES = sorted((DEPLOY / "docker").glob("*.Dockerfile"))


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_lint(path: Path) -> None:
    dockerfile_parse = pytest.importorskip(
        "dockerfile_parse",
        reason="dockerfile-parse is not installed (pip install dockerfile-parse)",
    )
    parser = dockerfile_parse.DockerfileParser(path=str(path))
    problems = lint(parser.structure)
    assert not problems, problems
    assert (path.parent / f"{path.name}.dockerignore").is_file()


def lint(instructions: list[dict[str, Any]]) -> list[str]:
    """The hadolint rules that matter here, on dockerfile-parse's instruction list."""
    problems: list[str] = []
    args = dict(
        i["value"].split("=", 1)
        for i in instructions
        if i["instruction"] == "ARG" and "=" in i["value"]
    )
    final = [i for i in instructions if i["instruction"] == "FROM"][-1]["startline"]
    tail = [i for i in instructions if i["startline"] >= final]
    for ins in instructions:
        kind, value = ins["instruction"], ins["value"]
        if kind == "FROM":
            image = value.split()[0]
            image = args.get(image.strip("${}"), image)
            if ":" not in image.split("/")[-1] or image.endswith(":latest"):
                problems.append(f"line {ins['startline']}: pin the base image tag: {image}")
        if kind == "COPY" and "--from=" not in value:
            for source in value.split()[:-1]:
                if not (ROOT / source).exists():
                    problems.append(f"line {ins['startline']}: COPY source {source} missing")
        if kind == "RUN" and "pip install" in value and "--no-cache-dir" not in value:
            problems.append(f"line {ins['startline']}: pip install without --no-cache-dir")
        if kind == "RUN" and "apt-get install" in value and "--no-install-recommends" not in value:
            problems.append(
                f"line {ins['startline']}: apt-get install without --no-install-recommends"
            )
        if kind in ("CMD", "ENTRYPOINT") and not value.startswith("["):
            problems.append(f"line {ins['startline']}: use the JSON form of {kind}")
    users = [i["value"] for i in tail if i["instruction"] == "USER"]
    if not users or users[-1] in ("root", "0"):
        problems.append("the final stage must run as an unprivileged USER")
    kinds = {i["instruction"] for i in tail}
    for needed in ("HEALTHCHECK", "EXPOSE", "ENTRYPOINT"):
        if needed not in kinds:
            problems.append(f"the final stage lacks {needed}")
    entry = [json.loads(i["value"]) for i in tail if i["instruction"] == "ENTRYPOINT"]
    if entry and entry[-1] != ["fraudstream"]:
        problems.append(f"ENTRYPOINT should be fraudstream, not {entry[-1]}")
    return problems


def test_the_linter_catches_what_it_claims(tmp_path: Path) -> None:
    dockerfile_parse = pytest.importorskip("dockerfile_parse", reason="dockerfile-parse missing")
    parser = dockerfile_parse.DockerfileParser(path=str(tmp_path / "bad.Dockerfile"))
    parser.content = "FROM python\nCOPY nothing-here /x\nRUN pip install x\nCMD fraudstream\n"
    problems = lint(parser.structure)
    for expected in ("pin the base image", "COPY source", "--no-cache-dir", "JSON form", "USER"):
        assert any(expected in p for p in problems), expected


def test_gpu_image_installs_the_gpu_extra() -> None:
    text = (DEPLOY / "docker" / "gpu.Dockerfile").read_text()
    assert '.whl)[gpu]"' in text  # TensorRT and torch come from the package's `gpu` extra
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    gpu = extras["optional-dependencies"]["gpu"]
    assert any(req.startswith("tensorrt") for req in gpu), gpu


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_images_carry_what_the_wheel_force_includes(path: Path) -> None:
    """hatch refuses to build a wheel whose force-included files are missing."""
    hatch = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]
    forced = hatch["build"]["targets"]["wheel"]["force-include"]
    ignore = path.with_name(path.name + ".dockerignore").read_text().splitlines()
    text = path.read_text()
    for src in forced:
        top = src.split("/")[0] + "/" + src.split("/")[1]
        assert f"!{top}/" in ignore, (path.name, src)
        assert f"COPY {top} " in text, (path.name, src)
