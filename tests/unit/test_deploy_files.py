"""The deployment files agree with the project: Dockerfile, .dockerignore, docker-compose.yml, the ClickHouse
init script and the Grafana provisioning.

No Docker engine runs on our machines or in CI, so nothing here starts a container: the files are parsed and
compared with what they refer to (the `pulse` commands, the PULSE_* settings and their bounds, the users in
deploy/clickhouse/users.sql, the tables the analyst may read), and with the rules of the stack (tags pinned,
health checks on every long-running service, a worker that scales, ports on loopback only).
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import importlib
import json
import os
import re
import shlex
import subprocess
import tomllib
import typing
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from pydantic import BaseModel, SecretStr

from pipeline.warehouse import ClickHouseSettings
from pulse.cli import main as pulse_cli
from pulse.settings import Settings, load

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PROJECT_IMAGE = f"community-pulse:{PYPROJECT['project']['version']}"
PROJECT_SERVICES = {name: s for name, s in SERVICES.items() if s.get("image") == PROJECT_IMAGE}
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards" / "community-pulse.json").read_text())
DATASOURCES = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "clickhouse.yaml").read_text())
USERS_SQL = (ROOT / "deploy" / "clickhouse" / "users.sql").read_text()
INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


# --- helpers ------------------------------------------------------------------------------------------


def setting_fields(model: type[BaseModel] = Settings, prefix: str = "PULSE_") -> dict[str, Any]:
    """Every environment variable the settings read, with its annotation (as test_settings walks them)."""
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found |= setting_fields(kind, f"{prefix}{name.upper()}__")
        else:
            found[f"{prefix}{name.upper()}"] = kind
    return found


def is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(is_secret(f.annotation) for f in annotation.model_fields.values())
    return any(is_secret(arg) for arg in typing.get_args(annotation) if not isinstance(arg, str | int))


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {str(k): str(v) for k, v in raw.items()}


def with_defaults(value: str) -> str:
    """A value as compose gives it when the shell and .env set nothing: `${X:-default}` -> default."""
    return INTERPOLATION.sub(lambda m: m[3] or "", value).replace("$$", "$")


def interpolated(value: str) -> str:
    """The variable a `${NAME:-default}` value comes from."""
    match = INTERPOLATION.fullmatch(value)
    assert match, f"{value} does not come from the environment"
    return match[1]


def one_shot_services() -> set[str]:
    return {
        target
        for service in SERVICES.values()
        for target, dependency in (service.get("depends_on") or {}).items()
        if dependency.get("condition") == "service_completed_successfully"
    }


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def dockerfile_env() -> dict[str, str]:
    pairs = [item for op, args in final_stage() if op == "ENV" for item in shlex.split(args)]
    return dict(pair.split("=", 1) for pair in pairs)


def image_env(service: dict[str, Any]) -> dict[str, str]:
    """What a project service's process sees, before ./pulse.env: the image's ENV, then the service's."""
    return dockerfile_env() | {k: with_defaults(v) for k, v in environment(service).items()}


def pinned(tag: str) -> bool:
    return bool(re.fullmatch(r"\d+\.\d+(\.\d+)*([-.][A-Za-z0-9.]+)?", tag)) and "latest" not in tag


# --- images -------------------------------------------------------------------------------------------


def test_every_image_is_pinned() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        assert "$" not in image, f"{name}: the tag must not come from the environment"
        repository, _, tag = image.rpartition(":")
        assert repository and pinned(tag), f"{name}: {image} is not pinned to a version"
    for op, args in dockerfile():
        if op == "FROM":
            image = args.split()[0]
            assert re.search(r":\d+\.\d+\.\d+", image), (
                f"Dockerfile: {image} is not pinned to a patch release"
            )
    plugins = SERVICES["grafana"]["environment"]["GF_PLUGINS_PREINSTALL_SYNC"].split(",")
    assert plugins and all(re.fullmatch(r"[\w-]+@\d+\.\d+\.\d+", p) for p in plugins), plugins
    assert any(p.startswith("grafana-clickhouse-datasource@") for p in plugins)


def test_the_project_image_is_built_once_and_tagged_with_the_project_version() -> None:
    assert {"topics", "migrate", "worker", "sink", "notifier", "webhooks"} <= set(PROJECT_SERVICES)
    builders = [name for name, service in PROJECT_SERVICES.items() if "build" in service]
    assert len(builders) == 1, builders
    assert not [name for name, s in SERVICES.items() if "build" in s and name not in PROJECT_SERVICES]


# --- the project's services ---------------------------------------------------------------------------


def test_project_services_run_real_pulse_commands() -> None:
    expected = {
        "topics": "topics", "migrate": "migrate", "worker": "process", "sink": "sink", "notifier": "notify",
        "webhooks": "webhooks",
    }  # fmt: skip
    for name, service in PROJECT_SERVICES.items():
        command = service["command"]
        assert isinstance(command, list), f"{name}: use the exec form, the image's entry point is `pulse`"
        exists = pulse_cli.get_command(click.Context(pulse_cli), command[0]) is not None
        assert exists, f"{name}: `pulse {command[0]}` does not exist"
        if name in expected:
            assert command[0] == expected[name], name


def test_every_pulse_variable_is_a_real_setting() -> None:
    known = setting_fields()
    used = {key for service in SERVICES.values() for key in environment(service) if key.startswith("PULSE_")}
    used |= {key for key in dockerfile_env() if key.startswith("PULSE_")}
    used |= set(re.findall(r"\b(PULSE_[A-Z0-9_]*[A-Z0-9])\b", COMPOSE_TEXT))
    assert used, "the stack sets no PULSE_* variable at all"
    assert sorted(used - set(known)) == []


def test_the_operations_guide_names_only_real_settings() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    assert "## Docker Compose" in guide
    named = set(re.findall(r"\b(PULSE_[A-Z0-9_]*[A-Z0-9])\b", guide))
    assert named and sorted(named - set(setting_fields())) == []


@pytest.mark.parametrize("name", sorted(PROJECT_SERVICES))
def test_each_service_settings_load(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The values the compose file gives (with its defaults) pass the settings' types and bounds."""
    for key in [k for k in os.environ if k.startswith("PULSE_")]:
        monkeypatch.delenv(key)
    for key, value in image_env(PROJECT_SERVICES[name]).items():
        monkeypatch.setenv(key, value)
    settings = load()
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    if name in ("migrate", "sink"):
        assert settings.clickhouse.dsn == "http://clickhouse:8123"
        assert settings.clickhouse.username == "pulse_writer"
        assert settings.clickhouse.password is not None


def test_services_agree_on_the_topics_and_workers_can_scale_to_three() -> None:
    topic_settings = {
        name: {k: v for k, v in image_env(service).items() if k.startswith("PULSE_TOPICS__")}
        for name, service in PROJECT_SERVICES.items()
    }
    assert len({json.dumps(s, sort_keys=True) for s in topic_settings.values()}) == 1, topic_settings
    partitions = int(topic_settings["worker"].get("PULSE_TOPICS__EVENT_PARTITIONS", "4"))
    assert partitions >= 3  # `--scale worker=3`: one partition feeds at most one worker


def test_the_worker_can_scale() -> None:
    worker = SERVICES["worker"]
    for key in ("container_name", "ports", "hostname"):
        assert key not in worker, f"worker: {key} makes a second replica collide with the first"
    assert worker["command"][0] == "process"


def test_secret_settings_come_from_the_environment() -> None:
    secrets = {name for name, annotation in setting_fields().items() if is_secret(annotation)}
    for name, service in SERVICES.items():
        for key, value in environment(service).items():
            if key in secrets or "PASSWORD" in key:
                match = INTERPOLATION.fullmatch(value)
                assert match, f"{name}: {key} must come from the environment, not be written here"
                assert match[2] == ":?" and match[1] in match[3], f"{name}: {key}: no default, a message"


def test_no_password_has_a_default_and_nothing_expands_to_nothing() -> None:
    """Without a password `docker compose` refuses to start, saying which (a default is a password anybody
    can read here); every other variable has a default; none expands to an empty string."""
    assert "change-me" not in COMPOSE_TEXT
    for match in INTERPOLATION.finditer(COMPOSE_TEXT):
        assert match[2] in (":-", ":?") and match[3], match[0]
        assert (match[2] == ":?") == ("PASSWORD" in match[1]), match[0]


def test_no_password_is_on_a_command_line() -> None:
    """Health checks and init scripts log in with client config files (deploy/clickhouse/client.sh)."""
    for name, service in SERVICES.items():
        test = service.get("healthcheck", {}).get("test", [])
        assert not any("--password" in part for part in test), name
    for script in (ROOT / "deploy").rglob("*.sh"):
        assert "--password" not in script.read_text(), script


def test_the_healthcheck_puts_the_password_in_a_private_file_never_in_an_argument(tmp_path: Path) -> None:
    """deploy/clickhouse/client.sh run with a stand-in for clickhouse-client that records what it got."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "clickhouse-client").write_text(
        "#!/bin/bash\n"
        f'printf "%s\\n" "$@" > {tmp_path}/argv\n'
        f'config=$2; stat -c %a "$config" > {tmp_path}/mode; cp "$config" {tmp_path}/config\n'
        f"env > {tmp_path}/env; cat > {tmp_path}/stdin\n"
    )
    (bin_dir / "hostname").write_text("#!/bin/bash\necho 172.18.0.2\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    password = "p<a&s>s-0123456789 'quoted'"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PW": password, "CLICKHOUSE_USER": "pulse_admin",
           "CLICKHOUSE_PASSWORD": "the-admins-password"}  # fmt: skip
    script = ROOT / "deploy" / "clickhouse" / "client.sh"
    done = subprocess.run(["bash", str(script), "healthcheck", "PW"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    argv = (tmp_path / "argv").read_text()
    assert "p<a&s>s" not in argv and "--config-file" in argv and "172.18.0.2" in argv
    assert (tmp_path / "mode").read_text().strip() == "600"
    config = (tmp_path / "config").read_text()
    assert "<user>pulse_writer</user>" in config
    assert "<password>p&lt;a&amp;s&gt;s-0123456789 'quoted'</password>" in config
    assert "CLICKHOUSE_PASSWORD" not in (tmp_path / "env").read_text(), "the administrator's would win"
    used = argv.splitlines()[argv.splitlines().index("--config-file") + 1]
    assert used.startswith("/tmp/pulse-client.") and not Path(used).exists(), "removed after use"

    new = "n3w-analyst-password-0123"
    done = subprocess.run(["bash", str(script), "set-password", "analyst"], env=env, input=new + "\n",
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        new not in (tmp_path / "argv").read_text()
        and "<user>pulse_admin</user>" in (tmp_path / "config").read_text()
    )
    digest = hashlib.sha256(new.encode()).hexdigest()
    assert (
        tmp_path / "stdin"
    ).read_text() == f"ALTER USER analyst IDENTIFIED WITH sha256_hash BY '{digest}'\n"
    short = subprocess.run(["bash", str(script), "set-password", "analyst"], env=env, input="short\n",
                           capture_output=True, text=True)  # fmt: skip
    assert short.returncode != 0 and "at least 16" in short.stderr


def test_the_optional_settings_file_is_optional() -> None:
    for name, service in PROJECT_SERVICES.items():
        assert service["env_file"] == [{"path": "./pulse.env", "required": False}], name


# --- health and start order ---------------------------------------------------------------------------


def test_every_long_running_service_has_a_health_check() -> None:
    one_shot = one_shot_services()
    assert {"topics", "migrate"} <= one_shot
    for name, service in SERVICES.items():
        if name in one_shot:
            assert service.get("restart") == "no", f"{name} exits when done: it must not be restarted"
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and check["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: no health check"
        assert not check.get("disable"), name
        assert service.get("restart") == "unless-stopped", name


def test_dependencies_exist_and_wait_for_health() -> None:
    for name, service in SERVICES.items():
        for target, dependency in (service.get("depends_on") or {}).items():
            assert target in SERVICES, f"{name} depends on a missing service {target}"
            condition = dependency["condition"]
            assert condition in ("service_healthy", "service_completed_successfully"), (name, target)
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], target
    assert SERVICES["sink"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert SERVICES["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert SERVICES["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"


def python_probes() -> list[tuple[str, str]]:
    return [
        (name, s["healthcheck"]["test"][3])
        for name, s in SERVICES.items()
        if s.get("healthcheck", {}).get("test", [])[:3] == ["CMD", "python", "-c"]
    ]


def test_python_health_probes_use_what_exists() -> None:
    probes = python_probes()
    assert {name for name, _ in probes} >= {"worker", "sink", "notifier", "webhooks"}
    for name, code in probes:
        tree = ast.parse(code)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{name}: {node.module}.{alias.name} does not exist"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    importlib.import_module(alias.name)


def test_the_webhook_probe_and_port_match_its_settings() -> None:
    service = SERVICES["webhooks"]
    env = image_env(service)
    port = env["PULSE_WEBHOOKS__PORT"]
    assert env["PULSE_WEBHOOKS__HOST"] == "0.0.0.0"  # inside the container; the host side is loopback
    assert f"http://127.0.0.1:{port}/readyz" in service["healthcheck"]["test"][3]
    assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert ("EXPOSE", port) in final_stage()


def test_published_ports_are_on_loopback_only() -> None:
    """Nothing is reachable from other machines until an operator decides so (docs/operations.md)."""
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


# --- ClickHouse ---------------------------------------------------------------------------------------


def mounts(service: str) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts."""
    found = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            found[target] = ROOT / source
    return found


def test_clickhouse_creates_the_users_the_services_log_in_as() -> None:
    clickhouse = mounts("clickhouse")
    initdb = clickhouse["/docker-entrypoint-initdb.d"]
    scripts = sorted(initdb.glob("*.sh"))
    assert scripts and all(os.access(s, os.X_OK) for s in scripts)
    script = scripts[0].read_text()
    users_in_container = re.search(r"< (\S+users\.sql)", script)
    assert users_in_container and clickhouse[users_in_container[1]] == ROOT / "deploy/clickhouse/users.sql"
    helper = re.search(r"source (\S+client\.sh)", script)
    assert helper and clickhouse[helper[1]] == ROOT / "deploy/clickhouse/client.sh"
    assert "IDENTIFIED WITH sha256_hash BY '" + "0" * 64 + "'" in USERS_SQL, "created locked"
    env = environment(SERVICES["clickhouse"])
    for variable in ("CLICKHOUSE_WRITER_PASSWORD", "CLICKHOUSE_ANALYST_PASSWORD"):
        assert variable in script and variable in env
    writer = environment(SERVICES["sink"])
    assert re.search(rf"CREATE USER IF NOT EXISTS {writer['PULSE_CLICKHOUSE__USERNAME']}\s", USERS_SQL)
    assert f'pulse_set_password "$pulse_admin_config" {writer["PULSE_CLICKHOUSE__USERNAME"]} ' in script
    # The writer's password is one variable for the server and for the services.
    assert interpolated(writer["PULSE_CLICKHOUSE__PASSWORD"]) == "CLICKHOUSE_WRITER_PASSWORD"
    assert interpolated(env["CLICKHOUSE_WRITER_PASSWORD"]) == "CLICKHOUSE_WRITER_PASSWORD"
    assert interpolated(env["CLICKHOUSE_ANALYST_PASSWORD"]) == "CLICKHOUSE_ANALYST_PASSWORD"
    assert "CLICKHOUSE_WRITER_PASSWORD" in str(SERVICES["clickhouse"]["healthcheck"]["test"])


# --- Grafana ------------------------------------------------------------------------------------------


def test_grafana_reads_the_provisioning_and_dashboards_it_is_given() -> None:
    grafana = mounts("grafana")
    assert grafana["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dashboards.yaml").read_text())
    (provider,) = providers["providers"]
    assert grafana[provider["options"]["path"]] == GRAFANA / "dashboards"
    home = Path(SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (grafana[str(home.parent)] / home.name).is_file()


def test_the_data_source_is_the_read_only_analyst() -> None:
    (source,) = DATASOURCES["datasources"]
    assert source["type"] == "grafana-clickhouse-datasource"
    assert source["jsonData"]["host"] == "clickhouse" and "clickhouse" in SERVICES
    assert source["jsonData"]["username"] == "analyst"
    assert re.search(r"CREATE USER IF NOT EXISTS analyst\s", USERS_SQL) and "readonly = 2" in USERS_SQL
    assert (
        source["jsonData"]["defaultDatabase"] == environment(SERVICES["sink"])["PULSE_CLICKHOUSE__DATABASE"]
    )
    variable = re.fullmatch(r"\$\{(\w+)\}", source["secureJsonData"]["password"])
    assert variable, "Grafana expands ${NAME} from its environment"
    assert interpolated(SERVICES["grafana"]["environment"][variable[1]]) == "CLICKHOUSE_ANALYST_PASSWORD"


def test_the_analysts_limits_cannot_be_set_away() -> None:
    """Each of `pulse query`'s limits is a constraint of the analyst's profile: it may be lowered, never
    raised or switched off (0 is "no limit"), and an overflow stays an error."""
    assert re.search(r"CREATE USER IF NOT EXISTS analyst\s[^;]*SETTINGS PROFILE 'analyst_limits';", USERS_SQL)
    profile = re.search(r"CREATE SETTINGS PROFILE IF NOT EXISTS analyst_limits SETTINGS([^;]*);", USERS_SQL)
    assert profile, "the analyst's profile"
    limits = {m[0]: (int(m[1]), int(m[2]), int(m[3]))
              for m in re.findall(r"(\w+) = (\d+) MIN (\d+) MAX (\d+)", profile[1])}  # fmt: skip
    defaults = ClickHouseSettings()
    ours = {
        "max_execution_time": defaults.query_timeout_s,
        "max_memory_usage": defaults.query_max_memory_bytes,
        "max_result_rows": defaults.query_max_rows,
    }
    for name, value in ours.items():
        assert name in limits, f"{name} is not constrained"
        assert limits[name][1] >= 1 and limits[name][0] == limits[name][2] == value, (name, limits[name])
    for mode in ("timeout_overflow_mode", "result_overflow_mode"):
        assert f"{mode} = 'throw' CONST" in profile[1]


def dashboard_queries() -> list[str]:
    targets = [t for p in DASHBOARD["panels"] for t in p.get("targets", [])]
    return [t["rawSql"] for t in targets] + [v["query"] for v in DASHBOARD["templating"]["list"]]


def test_the_dashboard_uses_the_provisioned_data_source() -> None:
    uid = DATASOURCES["datasources"][0]["uid"]
    for panel in DASHBOARD["panels"]:
        if panel["type"] in ("row", "text"):
            assert "targets" not in panel, panel["title"]
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"] and all(t["datasource"]["uid"] == uid for t in panel["targets"])
    assert all(v["datasource"]["uid"] == uid for v in DASHBOARD["templating"]["list"])


def test_the_dashboard_reads_only_what_the_analyst_may_read() -> None:
    granted = set(re.findall(r"GRANT SELECT ON pulse\.(\w+) TO analyst;", USERS_SQL))
    read = {table for sql in dashboard_queries() for table in re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", sql)}
    assert read and read <= granted, read - granted


# --- the Dockerfile -----------------------------------------------------------------------------------


def test_the_image_runs_pulse_as_a_non_root_user() -> None:
    stage = final_stage()
    users = [args for op, args in stage if op == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    (entrypoint,) = [json.loads(args) for op, args in stage if op == "ENTRYPOINT"]
    assert entrypoint == ["pulse"] and "pulse" in PYPROJECT["project"]["scripts"]
    (command,) = [json.loads(args) for op, args in stage if op == "CMD"]
    assert command == ["--help"]


def test_the_image_gets_every_package_and_nothing_else() -> None:
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [line for line in ignore if line and not line.startswith("#")]
    assert patterns[0] == "*", ".dockerignore is an allow-list"

    def excluded(path: str) -> bool:
        state = False
        for pattern in patterns:
            if fnmatch.fnmatch(path, pattern.removeprefix("!").rstrip("/")):
                state = not pattern.startswith("!")
        return state

    copied = set()
    for op, args in dockerfile():
        if op == "COPY" and not args.startswith("--from"):
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not excluded(source), f"{source} is copied but .dockerignore leaves it out"
                copied.add(source)
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages | {"pyproject.toml", PYPROJECT["project"]["readme"]} <= copied
