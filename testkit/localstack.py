"""Private Redis and PostgreSQL servers under a folder, for the run command and the tests.

Used when REDIS_URL / DATABASE_URL are not configured: the run command keeps them under
`var/`, the tests under a temporary folder on free ports. Both stop them on exit.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class LocalStackError(RuntimeError):
    """A private server could not be started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(port: int, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise LocalStackError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s}s")


# Local servers are asked directly: an http_proxy in the environment must not see them.
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen[Any] | None = None,
              what: str = "the server", ca_file: Path | None = None) -> None:
    """Until `url` answers 200; fails early if `proc` (the server's process) exits.

    `ca_file`: the authority an https server's certificate is checked against."""
    opener = direct if ca_file is None else urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(ca_file))))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LocalStackError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), opener.open(url, timeout=1) as resp:
            if resp.status == 200:
                return
        time.sleep(0.1)
    raise LocalStackError(f"{what} did not answer {url} within {timeout_s}s")


def pg_bin_dir() -> Path:
    """Debian keeps pg_ctl in /usr/lib/postgresql/<version>/bin, not on PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise LocalStackError("PostgreSQL server binaries not found; run scripts/setup.sh")


@dataclass
class RedisServer:
    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # Append-only file on: a Redis restart keeps the queue and the approval streams.
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "everysec",
                "--save", "", "--logfile", str(self.folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, 10, "redis-server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


@dataclass
class PostgresServer:
    folder: Path
    port: int
    database: str = "vwindow"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str) -> None:
        user_args: dict[str, object] = {}
        if os.geteuid() == 0:
            # initdb and postgres refuse to run as root; use the postgres system account.
            user_args = {"user": "postgres"}
        subprocess.run(args, check=True, capture_output=True, timeout=120, **user_args)  # type: ignore[call-overload]

    def start(self) -> None:
        bindir = pg_bin_dir()
        data = self.folder / "data"
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        if not (data / "PG_VERSION").exists():
            self._run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        for attempt in range(3):
            opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
                    "-c fsync=on -c max_connections=200")
            try:
                self._run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts,
                          "-l", str(self.folder / "postgres.log"), "-w", "-t", "60", "start")
                break
            except subprocess.CalledProcessError:
                log = (self.folder / "postgres.log").read_text(errors="replace")
                if "Address already in use" not in log[-2000:] or attempt == 2:
                    raise
                # The free port was taken between choosing it and binding: choose again.
                self.port = free_port()
        _wait_for_port(self.port, 30, "postgres")
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                      "-c", f"CREATE DATABASE {self.database}")

    def stop(self) -> None:
        data = self.folder / "data"
        if (data / "postmaster.pid").exists():
            self._run(str(pg_bin_dir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")


@contextlib.contextmanager
def private_servers(folder: Path, redis_port: int | None = None,
                    pg_port: int | None = None) -> Iterator[tuple[RedisServer, PostgresServer]]:
    redis = RedisServer(folder / "redis", redis_port or free_port())
    pg = PostgresServer(folder / "postgres", pg_port or free_port())
    redis.start()
    try:
        pg.start()
        try:
            yield redis, pg
        finally:
            pg.stop()
    finally:
        redis.stop()
