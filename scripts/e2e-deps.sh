#!/usr/bin/env bash
# What the browser end-to-end test needs, installed idempotently outside the checkout:
# Debian's `chromium` and npm's `playwright-core` (in $CONVREC_CACHE/e2e, no browser download:
# the test drives the system Chromium). Prints the two paths the test reads as
#   export CONVREC_E2E_CHROMIUM=… CONVREC_E2E_NODE_PATH=…
set -euo pipefail

CACHE="${CONVREC_CACHE:-$HOME/.cache/convrec}"
E2E="$CACHE/e2e"
PLAYWRIGHT_VERSION="1.49.1"

say() { printf '[e2e-deps] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v chromium >/dev/null 2>&1; then
  say "installing Debian chromium"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium >&2
fi
command -v node >/dev/null 2>&1 || { say "node is missing (apt-get install nodejs npm)"; exit 1; }

if [ ! -f "$E2E/node_modules/playwright-core/package.json" ]; then
  say "installing playwright-core $PLAYWRIGHT_VERSION into $E2E"
  mkdir -p "$E2E"
  (cd "$E2E" && [ -f package.json ] || echo '{"private":true}' >"$E2E/package.json")
  (cd "$E2E" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent \
    "playwright-core@$PLAYWRIGHT_VERSION" >&2)
fi

echo "export CONVREC_E2E_CHROMIUM=$(command -v chromium) CONVREC_E2E_NODE_PATH=$E2E/node_modules"
