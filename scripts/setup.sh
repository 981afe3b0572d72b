#!/usr/bin/env bash
# Installs what the project needs on a Debian machine, idempotently:
# Debian packages when missing, then the Python packages into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(redis-server postgresql chromium ffmpeg fonts-noto-cjk tesseract-ocr tesseract-ocr-eng
      nginx-light coturn iptables
      iproute2 util-linux python3-venv)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.setup-stamp
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$0" -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  # face-recognition declares dlib, which pip would compile; take the wheel instead.
  .venv/bin/pip install -q "dlib-bin>=19.24" "face-recognition-models>=0.3"
  .venv/bin/pip install -q --no-deps "face-recognition==1.3.0"
  .venv/bin/pip install -q -e ".[dev]"
  touch "$stamp"
fi
# The supervisor page's charts: uPlot from the npm registry, served by the app from
# web/vendor (no CDN at run time). The files are in the repository; this puts them back
# (same version) if they were removed, when npm is there.
UPLOT_VERSION=1.6.31
if [ ! -f web/vendor/uplot/uPlot.esm.js ] && command -v npm >/dev/null; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack -q "uplot@$UPLOT_VERSION" >/dev/null && tar xzf "uplot-$UPLOT_VERSION.tgz")
  mkdir -p web/vendor/uplot
  cp "$tmp/package/dist/uPlot.esm.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" web/vendor/uplot/
  rm -rf "$tmp"
fi
echo "setup: ok"
