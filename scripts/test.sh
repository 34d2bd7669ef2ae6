#!/usr/bin/env bash
# The whole test suite against the real local stack: `bash scripts/test.sh`.
# Brings the stack up first (installing what is missing), so it works on a bare machine.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/stack.sh up
eval "$(scripts/stack.sh env)"

# Builds live outside the checkout so a fresh clone reuses them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/convrec/target}"
if [ -z "${CONVREC_SHARED_DATA:-}" ] && [ -d ../shared/data ]; then
  CONVREC_SHARED_DATA="$(cd ../shared/data && pwd)"
  export CONVREC_SHARED_DATA
fi

# Each test creates its own database named test_*; drop the ones earlier runs left behind.
PSQL="${CONVREC_CACHE:-$HOME/.cache/convrec}/pg/pgserver/pginstall/bin/psql"
psql_cmd() { "$PSQL" "$CONVREC__DATABASE__ADMIN_URL" -qAtX "$@"; }
for db in $(psql_cmd -c "SELECT datname FROM pg_database WHERE datname LIKE 'test\_%'"); do
  psql_cmd -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" || true
done
# ... and the search server's test-* indices and templates (thousands slow it down until
# requests fail).
python3 scripts/clean-test-indices.py || true

# Chromium and playwright-core for the chat page's browser test (it is skipped without them).
if E2E_ENV="$(scripts/e2e-deps.sh)"; then eval "$E2E_ENV"; else echo "e2e deps unavailable: the browser test will be skipped" >&2; fi
# schemathesis for the OpenAPI fuzz test (it is skipped without it).
if FUZZ_ENV="$(scripts/fuzz-deps.sh)"; then eval "$FUZZ_ENV"; else echo "fuzz deps unavailable: the OpenAPI fuzz test will be skipped" >&2; fi

cargo test --workspace --all-targets "$@"

# The run build (scripts/run.sh) must be a part of this one, so that on a fresh machine the
# second of the two commands compiles no dependency again. Seconds, as both are built by now;
# it stops at the first dependency the run build would compile. Only for the whole suite:
# arguments can change what cargo builds.
if [ "$#" -eq 0 ]; then scripts/check-build-reuse.sh --fail-fast; fi
