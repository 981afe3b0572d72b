"""`make run`: the whole service on this machine, for trying it out.

Starts a private redis-server (append-only file on) and a private PostgreSQL cluster under
`var/` unless REDIS_URL / DATABASE_URL are set, migrates and seeds the database, then runs
one signaling node, one media worker and one approval worker until Ctrl-C, and stops
everything it started.

`make run LAN=1` (or `LAN=1` in the environment) serves the pages and the media worker on
HTTPS at the machine's LAN address (or `LAN_ADDRESS`) instead, with a certificate from a
local certificate authority made under `var/tls/` (kept, so kiosks install it once): a
kiosk on another computer of the village network can then open its cameras.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from core.migrate import allow_app_login, app_url, upgrade
from core.settings import ROOT, Settings
from testkit.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, DEMO_STAFF_PIN, DEMO_TERMINALS
from testkit.localstack import LocalStackError, PostgresServer, RedisServer, free_port, wait_http
from testkit.tls import ServerTls, server_tls

# Where the private stores, the LAN certificates and the logs live (a test points it elsewhere).
VAR = Path(os.environ.get("DEVRUN_VAR") or ROOT / "var")


@contextlib.contextmanager
def _stores(env: dict[str, str]) -> Iterator[None]:
    """Private servers for whatever is not configured; their URLs go into `env`."""
    redis: RedisServer | None = None
    pg: PostgresServer | None = None
    try:
        if not os.environ.get("REDIS_URL"):
            redis = RedisServer(VAR / "redis", free_port())
            redis.start()
            env["REDIS_URL"] = redis.url
        if not os.environ.get("DATABASE_URL"):
            VAR.mkdir(exist_ok=True)
            if os.geteuid() == 0:
                os.chmod(VAR, 0o755)  # the postgres account must reach its data folder
            pg = PostgresServer(VAR / "postgres", free_port())
            pg.start()
            env["DATABASE_URL"] = pg.url
        yield
    finally:
        if pg is not None:
            pg.stop()
        if redis is not None:
            redis.stop()


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, stdout=out,
                            stderr=subprocess.STDOUT)


LAN_PORT, LAN_MEDIA_PORT = 8443, 8444


def lan_address() -> str:
    """The first global IPv4 address of this machine (`LAN_ADDRESS` overrides it)."""
    if os.environ.get("LAN_ADDRESS"):
        return os.environ["LAN_ADDRESS"]
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=False, timeout=10).stdout
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    raise SystemExit("LAN=1: this machine has no LAN address (set LAN_ADDRESS)")


def lan_env(env: dict[str, str], address: str) -> ServerTls:
    """Settings for HTTPS on the LAN address, and the certificate they use."""
    tls = server_tls(VAR / "tls", [address, "127.0.0.1"], ["localhost"])
    env.update({
        "LISTEN_HOST": "0.0.0.0", "LISTEN_PORT": str(LAN_PORT),
        "PUBLIC_URL": f"https://{address}:{LAN_PORT}",
        "TLS_CERT_FILE": str(tls.cert_file), "TLS_KEY_FILE": str(tls.key_file),
        "MEDIA_LISTEN_HOST": "0.0.0.0", "MEDIA_LISTEN_PORT": str(LAN_MEDIA_PORT),
        "MEDIA_PUBLIC_URL": f"https://{address}:{LAN_MEDIA_PORT}",
        "MEDIA_TLS_CERT_FILE": str(tls.cert_file), "MEDIA_TLS_KEY_FILE": str(tls.key_file),
        "MEDIA_ICE_HOSTS": address, "COOKIE_SECURE": "true",
    })
    return tls


def main() -> None:
    env = dict(os.environ)
    lan = env.get("LAN", "") not in ("", "0")
    tls = lan_env(env, lan_address()) if lan else None
    env.setdefault("MEDIA_ICE_HOSTS", "127.0.0.1")
    env["RUN_MODE"] = "local"  # demo secrets, demo data and the kiosk's ?token= URL
    logs = VAR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with _stores(env):
        upgrade(env["DATABASE_URL"])
        import asyncio

        from testkit.demo import seed_demo

        asyncio.run(seed_demo(env["DATABASE_URL"]))
        if not os.environ.get("DATABASE_URL"):  # our private cluster: run least-privileged
            allow_app_login(env["DATABASE_URL"])
            env["DATABASE_URL"] = app_url(env["DATABASE_URL"])
        settings = Settings.from_env(env)
        procs = [
            _spawn(["-m", "signaling"], env, logs / "signaling.log"),
            _spawn(["-m", "media"], env, logs / "media.log"),
            _spawn(["-m", "approval"], env, logs / "approval.log"),
        ]
        stop = False

        def _stop(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        try:
            base = settings.base_url
            try:
                ca = tls.ca_file if tls is not None else None
                wait_http(f"{base}/healthz", 60, procs[0], "signaling", ca)
                # Calls need the worker (its verification pool warms first): the URLs are
                # printed only when a visit can start.
                scheme = "https" if tls is not None else "http"
                wait_http(f"{scheme}://127.0.0.1:{settings.media_port}/health", 120, procs[1],
                          "the media worker", ca)
            except LocalStackError as exc:
                raise SystemExit(f"{exc}; see {VAR / 'logs'}") from exc
            _banner(base, env)
            if tls is not None:
                _lan_banner(tls)
            while not stop and all(p.poll() is None for p in procs):
                time.sleep(0.5)
            for p in procs:
                if p.poll() is not None and not stop:
                    print(f"a process exited ({p.args!r} → {p.returncode}); stopping",
                          file=sys.stderr)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def _banner(base: str, env: dict[str, str]) -> None:
    t = DEMO_TERMINALS[0]
    clerks = ", ".join(a.username for a in DEMO_ACCOUNTS if a.role == "clerk")
    reviewers = ", ".join(a.username for a in DEMO_ACCOUNTS if a.role == "reviewer")
    local = base.replace("127.0.0.1", "localhost")
    print(f"""
远程虚拟窗口 is running (Ctrl-C stops it; logs in {VAR / 'logs'})
  Redis:       {env["REDIS_URL"]}
  PostgreSQL:  {env["DATABASE_URL"]}

  Village kiosk:     {base}/terminal/?token={t.token}   ({t.name})
  Clerk console:     {local}/clerk/      (another address or browser profile than the kiosk)
  Reviewer page:     {base}/reviewer/
  QA replay:         {base}/qa/          (qa1 or admin)
  Certificate check: {base}/verify/<certificate number>
  Supervisor:        {base}/api/supervisor/figures   ·   {base}/metrics

  Demo login (password {DEMO_PASSWORD}): clerks {clerks}; reviewers {reviewers}; qa1; admin
  Kiosk staff PIN (opens certificates for printing): {DEMO_STAFF_PIN}
  (RUN_MODE=local: demo secrets and the kiosk's ?token= URL are accepted here only)
""", flush=True)


def _lan_banner(tls: ServerTls) -> None:
    print(f"""  LAN mode: HTTPS with a certificate of this machine's own authority.
  Install {tls.ca_file} as a trusted root on each kiosk and clerk PC, once:
    Windows:  double-click ca.pem (rename to ca.crt) → 安装证书 → 本地计算机 →
              受信任的根证书颁发机构
    Debian / UOS / Kylin (Chromium, package libnss3-tools):
              certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n vwindow-local-ca -i ca.pem
  then open the kiosk URL above on the kiosk (it must be this machine's LAN address).
""", flush=True)


if __name__ == "__main__":
    main()
