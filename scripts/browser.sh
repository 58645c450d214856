#!/usr/bin/env bash
# Install the browser the browser tests drive: Debian's Chromium, through apt. Playwright's
# own browser download (`playwright install`) is not used: its download host cannot be
# reached from every machine, so the tests launch this Chromium by its path instead.
# Idempotent: an installed Chromium is left as it is.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "browser: installing chromium with apt-get"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
command -v chromium
