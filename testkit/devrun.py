"""`make run`: the whole service on this machine, for trying it out.

Starts a private redis-server (append-only file on) and a private PostgreSQL cluster under
`var/` unless REDIS_URL / DATABASE_URL are set, migrates and seeds the database, then runs
one signaling node, one media worker and one approval worker until Ctrl-C, and stops
everything it started.
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

VAR = ROOT / "var"


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


def main() -> None:
    env = dict(os.environ)
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
                wait_http(f"{base}/healthz", 60, procs[0], "signaling")
            except LocalStackError as exc:
                raise SystemExit(f"{exc}; see var/logs/") from exc
            _banner(base, env)
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
远程虚拟窗口 is running (Ctrl-C stops it; logs in var/logs/)
  Redis:       {env["REDIS_URL"]}
  PostgreSQL:  {env["DATABASE_URL"]}

  Village kiosk:     {base}/terminal/?token={t.token}   ({t.name})
  Clerk console:     {local}/clerk/      (another address or browser profile than the kiosk)
  Reviewer page:     {base}/reviewer/
  Certificate check: {base}/verify/<certificate number>
  Supervisor:        {base}/api/supervisor/figures   ·   {base}/metrics

  Demo login (password {DEMO_PASSWORD}): clerks {clerks}; reviewers {reviewers}; qa1; admin
  Kiosk staff PIN (opens certificates for printing): {DEMO_STAFF_PIN}
  (RUN_MODE=local: demo secrets and the kiosk's ?token= URL are accepted here only)
""", flush=True)


if __name__ == "__main__":
    main()
