"""The deployment files agree with each other and with the settings coverbot documents.

The test run starts no Docker engine (the image was built and run by hand; README, "Deploy"),
so these read docker-compose.yml, deploy/ and the Dockerfile as data: the URLs the bot is
given point at the services that serve them, the data dir is the volume, Prometheus scrapes
the port the bot serves, and the image installs with the same `make install` recipe CI runs.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from bot.config import (
    ENV_CHROMA_URL,
    ENV_CONFIG,
    ENV_DATA_DIR,
    ENV_STATE_URL,
    ENV_TOKEN,
    load_config,
)

ROOT = Path(__file__).resolve().parent.parent
_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, for the forms this file uses."""

    def value(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"{name}: {rest}")
        return rest or ""

    return _VARIABLE.sub(value, text)


def compose(env: dict[str, str]) -> dict[str, Any]:
    text = (ROOT / "docker-compose.yml").read_text()
    data: dict[str, Any] = yaml.safe_load(interpolate(text, env))
    return data


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the final Dockerfile lines, continuations joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split()[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


ENV = {"TELEGRAM_TOKEN": "123:abc", "POSTGRES_PASSWORD": "s3cret"}


def test_services_and_the_metrics_profile() -> None:
    services = compose(ENV)["services"]
    assert set(services) == {"bot", "chroma", "postgres", "prometheus"}
    assert services["prometheus"]["profiles"] == ["metrics"]
    assert all("profiles" not in services[name] for name in ("bot", "chroma", "postgres"))
    with pytest.raises(KeyError, match="TELEGRAM_TOKEN"):
        compose({})


def test_the_bot_is_pointed_at_the_services_that_serve_it() -> None:
    services = compose(ENV)["services"]
    env = services["bot"]["environment"]
    assert env[ENV_TOKEN] == "123:abc"
    chroma = sa.make_url(env[ENV_CHROMA_URL].replace("http://", "chroma+http://"))
    command = services["chroma"]["command"]
    assert services["chroma"]["entrypoint"] == ["chroma"] and command[0] == "run"
    assert chroma.host == "chroma" and chroma.port == int(command[command.index("--port") + 1])
    assert command[command.index("--host") + 1] == "0.0.0.0"
    state = sa.make_url(env[ENV_STATE_URL])
    postgres = services["postgres"]["environment"]
    assert state.drivername == "postgresql+psycopg"
    assert (state.host, state.port) == ("postgres", 5432)
    assert state.username == postgres["POSTGRES_USER"]
    assert state.password == postgres["POSTGRES_PASSWORD"] == "s3cret"
    assert state.database == postgres["POSTGRES_DB"]
    assert set(services["bot"]["depends_on"]) == {"chroma", "postgres"}


def test_the_mounted_config_loads_and_prometheus_scrapes_its_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bot = compose(ENV)["services"]["bot"]
    env = bot["environment"]
    mounts = {target: source for source, target, *_ in (m.split(":") for m in bot["volumes"])}
    source = mounts[env[ENV_CONFIG]]
    assert source.startswith("./")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # As the container reads it: the mounted file from $COVERBOT_CONFIG, then the environment.
    monkeypatch.setenv(ENV_CONFIG, str(ROOT / source))
    config = load_config()
    assert str(config.data_dir) == env[ENV_DATA_DIR] == "/data"
    assert mounts["/data"] == "bot-data"
    assert config.index.chroma_url == env[ENV_CHROMA_URL]
    assert config.state_url == env[ENV_STATE_URL]
    assert config.metrics.enabled and config.metrics.listen == "0.0.0.0"
    assert str(config.metrics.port) in bot["expose"]
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = [
        t for job in scrape["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    ]
    assert targets == [f"bot:{config.metrics.port}"]


def test_config_example_documents_the_environment_overrides() -> None:
    example = (ROOT / "config.example.toml").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in (ENV_CHROMA_URL, ENV_STATE_URL):
        assert name in example and name in readme


def test_image_installs_with_make_install_and_checks_its_health() -> None:
    lines = dockerfile()
    froms = [args for kind, args in lines if kind == "FROM"]
    assert len(froms) == 2 and froms[-1] == "${PYTHON_IMAGE}"
    base = next(args for kind, args in lines if kind == "ARG" and args.startswith("PYTHON_IMAGE"))
    assert base.endswith("-slim-bookworm")
    runs = [args for kind, args in lines if kind == "RUN"]
    install = [r for r in runs if r.startswith("make install")]
    assert install == ["make install VENV=/opt/coverbot PACKAGE=."]
    makefile = (ROOT / "Makefile").read_text()
    assert "$(BIN)/python -m pip install --quiet $(PACKAGE)" in makefile
    env = " ".join(args for kind, args in lines if kind == "ENV")
    assert "download.pytorch.org/whl/cpu" in " ".join(args for kind, args in lines if kind == "ARG")
    assert "HF_HUB_OFFLINE=1" in env and f"{ENV_DATA_DIR}=/data" in env
    [user] = [args for kind, args in lines if kind == "USER"]
    assert not user.startswith(("0", "root"))
    assert ("VOLUME", '["/data"]') in lines
    [healthcheck] = [args for kind, args in lines if kind == "HEALTHCHECK"]
    assert healthcheck.endswith('CMD ["coverbot", "health"]')
    copied = [
        shlex.split(args)[:-1] for kind, args in lines if kind == "COPY" and "--from" not in args
    ]
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for sources in copied:
        for source in sources:
            assert (ROOT / source).exists(), source
            assert f"!{source.rstrip('/')}" in {line.rstrip("/") for line in ignore}, source
