"""docker/: the compose file passes only real settings, runs real modules, takes secrets from .env.

There is no Docker engine here, so the files are checked as data against the code.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import yaml

from core.settings import table as settings_table

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
NGINX = ROOT / "deploy" / "nginx" / "vwindow.conf"  # one site file for docker/ and Debian
APP_MODULES = {"signaling", "media", "approval", "core.migrate"}
SECRETS = {"JOIN_TOKEN_SECRET", "MEDIA_TURN_SECRET"}


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    return data


def _setting_names() -> set[str]:
    return {f.metadata["env"] for f, _ in settings_table()}


def _app_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return {name: s for name, s in services.items()
            if str(s.get("image", "")).startswith("vwindow:")}


def _modules(command: str | list[str]) -> list[str]:
    text = command if isinstance(command, str) else " ".join(command)
    return re.findall(r"python -m ([a-z_.]+)", text)


def _runnable(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    if spec is None:
        return False
    if spec.submodule_search_locations is not None:  # a package runs its __main__
        return importlib.util.find_spec(module + ".__main__") is not None
    return spec.origin is not None and "__main__" in Path(spec.origin).read_text(encoding="utf-8")


def test_settings_are_found_in_core_settings() -> None:
    assert {"REDIS_URL", "DATABASE_URL", "MEDIA_ICE_HOSTS", "MEDIA_TURN_SECRET"} <= _setting_names()


def test_app_services_pass_only_real_settings() -> None:
    names = _setting_names()
    services = _app_services()
    expected = {"migrate", "signaling-1", "signaling-2", "media-1", "media-2", "approval"}
    assert expected <= set(services)
    for name, service in services.items():
        env = service.get("environment", {})
        assert isinstance(env, dict), f"{name}: environment as a mapping"
        unknown = set(env) - names
        assert not unknown, f"{name} passes {sorted(unknown)}, which core/settings.py never reads"


def test_app_services_run_existing_modules() -> None:
    seen: set[str] = set()
    for name, service in _app_services().items():
        modules = _modules(service["command"])
        assert modules, f"{name} runs no `python -m` module"
        for module in modules:
            assert module in APP_MODULES and _runnable(module), f"{name}: {module}"
        seen |= set(modules)
    assert seen == APP_MODULES


def test_secrets_come_from_the_env_file() -> None:
    for name, service in _app_services().items():
        env = service["environment"]
        for key in SECRETS & set(env):
            assert str(env[key]).startswith("${"), f"{name}: {key} is written in the file"
        for key in ("REDIS_URL", "DATABASE_URL"):
            assert "${" in str(env[key]), f"{name}: {key} carries no password from .env"


def test_every_variable_is_in_env_example_with_a_comment() -> None:
    text = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    lines = (DOCKER / ".env.example").read_text(encoding="utf-8").splitlines()
    defined = {}
    for i, line in enumerate(lines):
        if m := re.match(r"^([A-Z0-9_]+)=", line):
            defined[m.group(1)] = i > 0 and lines[i - 1].startswith("#")
    assert used - set(defined) == set(), "variables missing from docker/.env.example"
    assert all(defined.values()), "every variable in docker/.env.example has a comment"
    assert set(defined) - used == set(), "docker/.env.example lists variables nobody uses"


def test_media_worker_announces_the_lan_address_and_turn_shares_the_secret() -> None:
    services = _compose()["services"]
    for n in (1, 2):
        media = services[f"media-{n}"]
        assert media["network_mode"] == "host"
        assert media["environment"]["MEDIA_ICE_HOSTS"] == "${SERVER_LAN_IP}"
        # Each worker under its own prefix of the proxy, as deploy/nginx/vwindow.conf has it.
        assert media["environment"]["MEDIA_PUBLIC_URL"] == f"https://${{SERVER_NAME}}/media/{n}"
        assert media["environment"]["MEDIA_WORKER_ID"] == f"media-{n}"
    turn = " ".join(services["coturn"]["command"])
    assert "--use-auth-secret" in turn
    assert "--static-auth-secret=${MEDIA_TURN_SECRET}" in turn
    assert services["redis"]["command"][1:3] == ["--appendonly", "yes"]
    assert services["postgres"]["image"].startswith("postgres:15")
    assert "healthcheck" in services["postgres"]


def test_dockerfile_copies_what_exists_and_installs_like_setup() -> None:
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    assert text.startswith("#") and "FROM python:3.11-slim-bookworm" in text
    for package in ("ffmpeg", "fonts-noto-cjk", "tesseract-ocr"):
        assert package in text
    assert "dlib-bin" in text and "--no-deps \"face-recognition" in text
    for src in re.findall(r"^COPY (\S+) ", text, re.MULTILINE):
        assert (ROOT / src).exists(), f"Dockerfile copies {src}, which does not exist"


def test_nginx_proxies_pages_websocket_and_both_workers() -> None:
    text = NGINX.read_text(encoding="utf-8")
    assert "location = /ws" in text and "Upgrade" in text
    for n in (1, 2):
        assert f"location /media/{n}/" in text and f"proxy_pass http://@@MEDIA_{n}@@/;" in text
    assert "location / {" in text


def test_turn_relays_to_no_private_loopback_or_link_local_peer_but_the_worker() -> None:
    turn = _compose()["services"]["coturn"]["command"]
    denied = {c.split("=", 1)[1] for c in turn if c.startswith("--denied-peer-ip=")}
    for cidr_range in ("10.0.0.0-10.255.255.255", "172.16.0.0-172.31.255.255",
                       "192.168.0.0-192.168.255.255", "127.0.0.0-127.255.255.255",
                       "169.254.0.0-169.254.255.255", "100.64.0.0-100.127.255.255", "::1",
                       "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                       "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"):
        assert cidr_range in denied
    allowed = [c for c in turn if c.startswith("--allowed-peer-ip=")]
    assert allowed == ["--allowed-peer-ip=${SERVER_LAN_IP}"]


def test_production_runs_least_privileged_with_every_secret_from_the_env_file() -> None:
    for name, service in _app_services().items():
        env = service["environment"]
        assert "RUN_MODE" not in env, f"{name} must run as production"
        user = str(env["DATABASE_URL"]).split("://", 1)[1].split(":", 1)[0]
        assert user == ("vwindow" if name == "migrate" else "vwindow_app"), name
        for key in ("OPS_TOKEN", "ESEAL_PASSPHRASE", "JOIN_TOKEN_SECRET"):
            assert str(env[key]).startswith("${"), f"{name}: {key}"
    media = _compose()["services"]["media-1"]["healthcheck"]["test"]
    assert "/healthz" in " ".join(media)  # the figures page needs the ops token


def test_nginx_sends_the_security_headers() -> None:
    text = NGINX.read_text(encoding="utf-8")
    for header in ("Strict-Transport-Security", "X-Content-Type-Options", "Referrer-Policy",
                   "Permissions-Policy"):
        assert f"add_header {header}" in text
