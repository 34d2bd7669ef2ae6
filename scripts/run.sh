#!/usr/bin/env bash
# Starts the whole service on the local stack with the demo catalog: `bash scripts/run.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/stack.sh up
eval "$(scripts/stack.sh env)"
# The recommender and the chat embed with multilingual-e5-small (Korean and English alike);
# /embed keeps MiniLM. CONVREC__MULTILINGUAL_MODEL__DIR= (empty) serves MiniLM everywhere.
export CONVREC__MULTILINGUAL_MODEL__DIR="${CONVREC__MULTILINGUAL_MODEL__DIR-$CONVREC_MULTILINGUAL_MODEL_DIR}"
# e5's cosines sit higher than MiniLM's, so the near-copy MMR (threshold 0.9) pushes relevant
# products down as "copies": without it the hybrid scores 0.7459 vs 0.6735 on the English dev
# half and 0.4434 vs 0.3794 on the Korean dev set (docs/evaluation.md, 2026-12-03).
if [ -n "$CONVREC__MULTILINGUAL_MODEL__DIR" ]; then
  export CONVREC__RECOMMENDER__DIVERSITY_LAMBDA="${CONVREC__RECOMMENDER__DIVERSITY_LAMBDA:-1}"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/convrec/target}"
cargo build --bin convrec
BIN="$CARGO_TARGET_DIR/debug/convrec"

# A stable local admin token for catalog writes, unless one is configured.
TOKEN_FILE="${CONVREC_CACHE:-$HOME/.cache/convrec}/admin-token"
if [ -z "${CONVREC__SECURITY__ADMIN_TOKEN:-}" ]; then
  [ -s "$TOKEN_FILE" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TOKEN_FILE"
  CONVREC__SECURITY__ADMIN_TOKEN="$(cat "$TOKEN_FILE")"
  export CONVREC__SECURITY__ADMIN_TOKEN
fi

# The chat page at / gets its member token from POST /api/demo/token: on for the local demo only.
export CONVREC__SECURITY__DEMO_TOKENS="${CONVREC__SECURITY__DEMO_TOKENS:-true}"

"$BIN" migrate
"$BIN" import demo

HOST="${CONVREC__SERVER__HOST:-127.0.0.1}"
PORT="${CONVREC__SERVER__PORT:-8080}"
cat <<MSG

convrec is starting on http://$HOST:$PORT
  chat page  http://$HOST:$PORT/  (demo tokens on)
  products   http://$HOST:$PORT/api/products
  readiness  http://$HOST:$PORT/readyz
  metrics    http://$HOST:$PORT/metrics
  admin token (catalog writes): $TOKEN_FILE
Stop with Ctrl-C; the stack keeps running (scripts/stack.sh down stops it).

MSG
exec "$BIN" serve
