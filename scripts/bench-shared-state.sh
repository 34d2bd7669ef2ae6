#!/usr/bin/env bash
# Issue 16's cross-instance target: two `convrec serve` processes of one binary on one stack
# (their own database, prefixes and topics); a view posted to the first must change the
# member's list on the second within 1 s (p95). Runs scripts/bench_view_latency.py.
#   bash scripts/bench-shared-state.sh [BINARY]   (default: this checkout's debug build)
# SAMPLES (default 100), NAME (default ss) names the database and prefixes.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CONVREC_CACHE:-$HOME/.cache/convrec}"
NAME="${NAME:-ss}"
scripts/stack.sh up >/dev/null
eval "$(scripts/stack.sh env)"
# A binary from before the state store (issue 16) refuses the unknown setting.
if [ -n "${WITHOUT_STATE_STORE:-}" ]; then unset CONVREC__REDIS__STATE_URL; fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
BIN="${1:-}"
if [ -z "$BIN" ]; then
  cargo build --bin convrec
  BIN="$CARGO_TARGET_DIR/debug/convrec"
fi
export CONVREC__DATABASE__URL="${CONVREC__DATABASE__URL%/*}/convrec_$NAME"
export CONVREC__REDIS__KEY_PREFIX="$NAME:"
export CONVREC__KAFKA__TOPIC_PREFIX="$NAME."
export CONVREC__ELASTICSEARCH__INDEX_PREFIX="$NAME-"
export CONVREC__RATE_LIMIT__ENABLED=false
export CONVREC__EVENTS__IDEMPOTENT_PRODUCER=false
export CONVREC__SECURITY__ADMIN_TOKEN="bench-$NAME-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export CONVREC__LOG__LEVEL=warn
psql "${CONVREC__DATABASE__URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS convrec_$NAME WITH (FORCE)" >/dev/null
"$BIN" migrate >/dev/null
"$BIN" import demo >/dev/null
LOGS="$CACHE/load-results"; mkdir -p "$LOGS"
CONVREC__SERVER__PORT=18081 "$BIN" serve >"$LOGS/$NAME-a.log" 2>&1 & A=$!
CONVREC__SERVER__PORT=18082 "$BIN" serve >"$LOGS/$NAME-b.log" 2>&1 & B=$!
trap 'kill $A $B 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for port in 18081 18082; do
  for _ in $(seq 1 120); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 1; done
done
echo "== $BIN: view on :18081, list read from :18082"
python3 scripts/bench_view_latency.py --post http://127.0.0.1:18081 --read http://127.0.0.1:18082 \
  --token "$CONVREC__SECURITY__ADMIN_TOKEN" --samples "${SAMPLES:-100}"
