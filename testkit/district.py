"""The district's servers in the production layout, for the multi-host tests and benches.

Runs inside the "district" host (a network namespace, `testkit.netns`): Redis (append-only
file, `everysec`) and PostgreSQL on their standard ports, two signaling nodes, two media
workers, the approval worker, nginx with TLS in front (the shipped `deploy/nginx` config)
and coturn with `use-auth-secret` (the shipped `deploy/coturn` config). Kiosks and
consoles on other hosts reach it only through nginx on https and media over ICE / TURN.
Each process can be killed (`kill -9`) and started again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.migrate import upgrade
from core.settings import ROOT
from testkit.demo import seed_demo
from testkit.localstack import PostgresServer, RedisServer, wait_http
from testkit.tls import ServerTls, server_tls

DEPLOY = ROOT / "deploy"
SIGNALING_PORTS = {"signaling-1": 8081, "signaling-2": 8082}
MEDIA_PORTS = {"media-1": 8091, "media-2": 8092}
TURN_SECRET = "district-turn-secret-for-tests-only-0123456789"
JOIN_SECRET = "district-join-secret-for-tests-only-0123456789"


def render(template: Path, values: dict[str, str]) -> str:
    text = template.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace(f"@@{name}@@", value)
    leftover = [line for line in text.splitlines()
                if "@@" in line and not line.lstrip().startswith("#")]
    if leftover:
        raise ValueError(f"{template.name}: unfilled {leftover[0]!r}")
    return text


@dataclass
class District:
    folder: Path
    addresses: list[str]  # this host's addresses (the first is what kiosks open)
    timers: dict[str, str] = field(default_factory=dict)  # settings for faster tests
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tls: ServerTls | None = None
    redis: RedisServer | None = None
    postgres: PostgresServer | None = None

    @property
    def server_name(self) -> str:
        return self.addresses[0]

    @property
    def base_url(self) -> str:
        return f"https://{self.server_name}"

    def env(self, name: str) -> dict[str, str]:
        assert self.redis is not None and self.postgres is not None
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
        env.update({
            "REDIS_URL": self.redis.url, "DATABASE_URL": self.postgres.url,
            "PUBLIC_URL": self.base_url, "COOKIE_SECURE": "true", "NODE_ID": name,
            "STORAGE_ROOT": str(self.folder / "storage"),
            "ESEAL_KEY_DIR": str(self.folder / "eseal"), "JOIN_TOKEN_SECRET": JOIN_SECRET,
            "MEDIA_TURN_URLS": f"turn:{self.server_name}:3478?transport=udp",
            "MEDIA_TURN_SECRET": TURN_SECRET, "MEDIA_ICE_HOSTS": ",".join(self.addresses),
            "PYTHONUNBUFFERED": "1", "RUN_MODE": "local",  # demo accounts and kiosk ?token=
            "PII_KEY_FILE": str(self.folder / "pii.key"),
            "EVIDENCE_KEY_DIR": str(self.folder / "evidence"), **self.timers,
        })
        if name in SIGNALING_PORTS:
            env.update({"LISTEN_HOST": "127.0.0.1", "LISTEN_PORT": str(SIGNALING_PORTS[name])})
        if name in MEDIA_PORTS:
            n = name.rsplit("-", 1)[1]
            env.update({"MEDIA_LISTEN_HOST": "127.0.0.1",
                        "MEDIA_LISTEN_PORT": str(MEDIA_PORTS[name]),
                        "MEDIA_PUBLIC_URL": f"{self.base_url}/media/{n}",
                        "MEDIA_WORKER_ID": name})
        return env

    # --- the stores --------------------------------------------------------------------

    def start_stores(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)
        for parent in self.folder.parents:
            if str(parent).startswith("/tmp/"):
                os.chmod(parent, 0o755)  # the postgres account must reach its data folder
        self.redis = RedisServer(self.folder / "redis", 6379)
        self.redis.start()
        self.postgres = PostgresServer(self.folder / "postgres", 5432)
        self.postgres.start()
        upgrade(self.postgres.url)
        asyncio.run(seed_demo(self.postgres.url))

    # --- the app processes ---------------------------------------------------------------

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """Start (or start again) one process and wait until it answers."""
        old = self.procs.pop(name, None)
        if old is not None and old.poll() is None:
            old.kill()
            old.wait(10)
        module = name.rsplit("-", 1)[0]
        with (self.folder / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=self.env(name),
                                    stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        if name in SIGNALING_PORTS:
            wait_http(f"http://127.0.0.1:{SIGNALING_PORTS[name]}/healthz", 60, proc, name)
        elif name in MEDIA_PORTS:
            wait_http(f"http://127.0.0.1:{MEDIA_PORTS[name]}/health", 120, proc, name)
        return proc

    def kill(self, name: str) -> None:
        """kill -9: no clean-up, as when a machine or a process dies."""
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def kill_redis(self) -> None:
        assert self.redis is not None and self.redis.process is not None
        os.kill(self.redis.process.pid, signal.SIGKILL)
        self.redis.process.wait(10)
        self.redis.process = None

    def start_redis(self) -> None:
        """Start Redis again on its folder: it reloads its append-only file."""
        assert self.redis is not None
        self.redis.start()

    def stop_postgres(self) -> None:
        assert self.postgres is not None
        self.postgres.stop()

    def start_postgres(self) -> None:
        assert self.postgres is not None
        self.postgres.start()

    def start_edge(self) -> None:
        """nginx (TLS) and coturn, from the shipped configs."""
        self.tls = server_tls(self.folder / "tls", self.addresses, ["localhost"])
        edge = self.folder / "nginx"
        edge.mkdir(exist_ok=True)
        site = render(DEPLOY / "nginx" / "vwindow.conf", {
            "SERVER_NAME": self.server_name, "LISTEN": "443", "LISTEN_HTTP": "80",
            "CERT": str(self.tls.cert_file),
            "KEY": str(self.tls.key_file),
            "SIGNALING_1": f"127.0.0.1:{SIGNALING_PORTS['signaling-1']}",
            "SIGNALING_2": f"127.0.0.1:{SIGNALING_PORTS['signaling-2']}",
            "MEDIA_1": f"127.0.0.1:{MEDIA_PORTS['media-1']}",
            "MEDIA_2": f"127.0.0.1:{MEDIA_PORTS['media-2']}"})
        (edge / "site.conf").write_text(site, encoding="utf-8")
        (edge / "nginx.conf").write_text(f"""
pid {edge}/nginx.pid;
error_log {edge}/error.log warn;
worker_processes 1;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {edge}/body;
    proxy_temp_path {edge}/proxy;
    fastcgi_temp_path {edge}/fastcgi;
    uwsgi_temp_path {edge}/uwsgi;
    scgi_temp_path {edge}/scgi;
    include {edge}/site.conf;
}}
""", encoding="utf-8")
        with (self.folder / "nginx.log").open("ab") as log:
            self.procs["nginx"] = subprocess.Popen(
                ["nginx", "-c", str(edge / "nginx.conf"), "-g", "daemon off;"],
                stdout=log, stderr=subprocess.STDOUT)
        allowed = "\n".join(f"allowed-peer-ip={a}" for a in self.addresses)
        turn = render(DEPLOY / "coturn" / "turnserver.conf", {
            "LISTEN_IP": self.server_name, "SECRET": TURN_SECRET, "REALM": "vwindow.test",
            "ALLOWED_PEERS": allowed})
        (self.folder / "turnserver.conf").write_text(turn, encoding="utf-8")
        with (self.folder / "coturn.log").open("ab") as log:
            self.procs["coturn"] = subprocess.Popen(
                ["turnserver", "-c", str(self.folder / "turnserver.conf"), "--log-file=stdout",
                 "--simple-log", f"--db={self.folder / 'turndb'}"],
                stdout=log, stderr=subprocess.STDOUT)
        wait_http(f"{self.base_url}/healthz", 30, self.procs["nginx"], "nginx",
                  self.tls.ca_file)

    def start_all(self) -> None:
        self.start_stores()
        for name in (*MEDIA_PORTS, *SIGNALING_PORTS):
            self.start(name)
        self.start("approval-1")
        self.start_edge()

    def close(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.postgres is not None:
            self.postgres.stop()
        if self.redis is not None:
            self.redis.stop()
