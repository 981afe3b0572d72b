"""`make run LAN=1`: the service on HTTPS at the LAN address, trusted by another host once
it has the printed CA file.

`python -m testkit.devrun` runs on a "district" host (a network namespace made here) with
its own Redis and PostgreSQL; a "village" host joined by a veth pair opens the kiosk page
and the media worker over TLS, checking the certificate against the CA file only.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import ROOT
from testkit import netns
from testkit.devrun import LAN_MEDIA_PORT, LAN_PORT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

DISTRICT, VILLAGE = "10.79.1.1", "10.79.1.2"
FETCH = """
import ssl, sys, urllib.error, urllib.request
url, ca = sys.argv[1], sys.argv[2]
context = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
try:
    with urllib.request.urlopen(url, context=context, timeout=10) as r:
        print(r.status, r.read().decode("utf-8", "replace")[:2000])
except urllib.error.HTTPError as e:
    print(e.code)  # TLS held: the server answered
except urllib.error.URLError as e:
    print("refused", e.reason)
"""


@pytest.fixture
def lan_run() -> Iterator[tuple[netns.Lab, netns.Host, Path, str]]:
    why = netns.available()
    if why is not None:
        pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="devrun-lan-"))
    os.chmod(folder, 0o755)  # the postgres account must reach its cluster inside
    log = folder / "devrun.out"
    try:
        with netns.lab() as lab:
            district, village = (lab.add_host(n) for n in ("district", "village"))
            _, village = lab.link(district, village, DISTRICT, VILLAGE)
            env = {k: v for k, v in os.environ.items()
                   if k not in ("REDIS_URL", "DATABASE_URL") and "proxy" not in k.lower()}
            env.update({"LAN": "1", "LAN_ADDRESS": DISTRICT, "DEVRUN_VAR": str(folder),
                        "PYTHONUNBUFFERED": "1"})
            proc = lab.start(district, [sys.executable, "-m", "testkit.devrun"], env, log,
                             cwd=ROOT)
            deadline = time.monotonic() + 150
            while "LAN mode" not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"make run LAN=1 did not come up:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
            yield lab, village, folder, log.read_text()
            lab.stop(proc, signal.SIGTERM, timeout_s=30)
            assert proc.returncode == 0, f"stopping it failed:\n{log.read_text()[-2000:]}"
            left = subprocess.run(["ip", "netns", "pids", district.netns], capture_output=True,
                                  text=True, check=False).stdout.split()
            assert not left, "make run left processes behind after stopping"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _fetch(lab: netns.Lab, host: netns.Host, url: str, ca: Path | None) -> str:
    out = lab.run(host, [sys.executable, "-c", FETCH, url, str(ca) if ca else ""],
                  timeout_s=30)
    return out.stdout.strip()


def test_a_kiosk_on_another_host_opens_the_service_over_https_with_the_printed_ca(
        lan_run: tuple[netns.Lab, netns.Host, Path, str]) -> None:
    lab, village, folder, banner = lan_run
    ca = folder / "tls" / "ca.pem"
    assert str(ca) in banner, "the banner names the CA file to install"
    assert "certutil" in banner and "受信任的根证书颁发机构" in banner
    kiosk = re.search(r"Village kiosk:\s+(\S+)", banner)
    assert kiosk and kiosk.group(1).startswith(f"https://{DISTRICT}:{LAN_PORT}/terminal/")
    page = _fetch(lab, village, f"https://{DISTRICT}:{LAN_PORT}/terminal/", ca)
    assert page.startswith("200") and "便民服务点" in page
    # The media worker's join path is on TLS too, with the same authority.
    media = _fetch(lab, village, f"https://{DISTRICT}:{LAN_MEDIA_PORT}/health", ca)
    assert re.match(r"^\d{3}\b", media), media
    # Without the CA the browser's check fails: the printed file is what makes it trusted.
    untrusted = _fetch(lab, village, f"https://{DISTRICT}:{LAN_PORT}/terminal/", None)
    assert untrusted.startswith("refused") and "CERTIFICATE_VERIFY_FAILED" in untrusted
