#!/usr/bin/env bash
# What the OpenAPI fuzz test (tests/api/openapi_fuzz.rs) needs, installed idempotently outside
# the checkout: schemathesis from PyPI in its own venv ($CONVREC_CACHE/fuzz/venv; its pins stay
# clear of the stack's venv). Prints the path the test reads as
#   export CONVREC_SCHEMATHESIS=…
set -euo pipefail

CACHE="${CONVREC_CACHE:-$HOME/.cache/convrec}"
VENV="$CACHE/fuzz/venv"
SCHEMATHESIS_VERSION="4.32.5"

say() { printf '[fuzz-deps] %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV" >&2
fi
installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)"
if [ "$installed" != "$SCHEMATHESIS_VERSION" ]; then
  say "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
fi

echo "export CONVREC_SCHEMATHESIS=$VENV/bin/schemathesis"
