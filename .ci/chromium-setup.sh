#!/usr/bin/env bash
# Installs Debian's `chromium` (headless browser for the web page test, sykli/tests/observe_web.rs)
# if missing. Idempotent; needs root (apt-get).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
echo "chromium-setup: installing chromium"
# Other setup tasks may be running apt at the same time: wait for its lock.
apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium
command -v chromium >/dev/null 2>&1 || { echo "chromium-setup: chromium is still missing" >&2; exit 1; }
