#!/usr/bin/env bash
# Encoder throughput: convrec's encoders against Python sentence-transformers on the same
# texts, batch sizes, model files and machine, in the same run, alternating round by round so
# that a change in the CPU available hits both. Results and how to read them:
# docs/benchmarks.md.
#
#   scripts/bench-embeddings.sh [--rounds N] [--seconds S] [--batch-sizes 1,8,32,128]
#                               [--backends] [--http] [--multilingual] [--dev] [--quick]
#                               [--out DIR]
#
#   --backends   also build burn's other candidate CPU backends (cargo features, see
#                Cargo.toml) and compare them at batch 32 (a few extra builds the first time);
#                the default build's encoders (native, burn on flex, plain ndarray) are
#                compared at batch 32 in every run
#   --http       also load `POST /embed` of a `convrec serve` started here on the local stack
#                (20 concurrent clients, bounded; 127.0.0.1 only)
#   --multilingual  also measure multilingual-e5-small against MiniLM on the default
#                encoder, same texts and batch sizes, alternating with the other rounds
#   --dev        measure the dev-profile build (what scripts/run.sh serves) instead of release
#   --quick      one round, 1 s per cell: a smoke test, not a measurement
#
# Installs what it needs into $CONVREC_CACHE (default ~/.cache/convrec): the model files
# through scripts/stack.sh, and sentence-transformers (with PyPI's torch) into bench-venv.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${CONVREC_CACHE:-$HOME/.cache/convrec}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
VENV="$CACHE/bench-venv"
ROUNDS=2
SECONDS_PER_CELL=3
BATCHES=1,8,32,128
BACKENDS=0
HTTP=0
MULTILINGUAL=0
PROFILE=release
OUT="$CACHE/bench/embeddings-$(date +%Y%m%d-%H%M%S)"
THREADS="${BENCH_THREADS:-2}"

while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_PER_CELL=$2; shift 2 ;;
    --batch-sizes) BATCHES=$2; shift 2 ;;
    --backends) BACKENDS=1; shift ;;
    --http) HTTP=1; shift ;;
    --multilingual) MULTILINGUAL=1; shift ;;
    --dev) PROFILE=dev; shift ;;
    --quick) ROUNDS=1; SECONDS_PER_CELL=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf '[bench] %s\n' "$*" >&2; }
mkdir -p "$OUT" "$CACHE/bench/bin"

# Candidates: tag | cargo features (on top of the defaults) | backends to run | extra
# environment. The default build has the native encoder (its default), burn on flex and
# plain ndarray, the reference row; those always run. ndarray's features change every
# ndarray in a binary, so its flavours need builds of their own (--backends).
CANDIDATES=(
  "default||default,burn,ndarray|"
  "default||default,burn|RAYON_NUM_THREADS=1"
  "ndarray-simd-threads|ndarray-simd,ndarray-threads|ndarray|"
  "blas-candle|backend-blas,ndarray-simd,ndarray-threads,backend-candle|ndarray,candle|"
  "blas-candle|backend-blas,ndarray-simd,ndarray-threads,backend-candle|ndarray|RAYON_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1"
)

# --- what it needs -----------------------------------------------------------------------
eval "$(scripts/stack.sh env 2>/dev/null)" || true
if [ ! -f "${CONVREC__MODEL__DIR:-/nonexistent}/model.safetensors" ]; then
  say "model files missing: running scripts/stack.sh install"
  scripts/stack.sh install
  eval "$(scripts/stack.sh env)"
fi
MODEL="$CONVREC__MODEL__DIR"

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import sentence_transformers' 2>/dev/null; then
  say "installing sentence-transformers (and PyPI's torch, a large download) into $VENV"
  "$VENV/bin/pip" install -q sentence-transformers
fi

# Builds one binary and keeps a copy, so several feature sets can be run side by side.
build() {
  local tag=$1 features=$2 log="$OUT/build-$1.log" start dir=debug
  [ "$PROFILE" = release ] && dir=release
  start=$(date +%s)
  say "building convrec ($PROFILE profile, $tag${features:+: --features $features}; log: $log)"
  cargo build --profile "$PROFILE" --bin convrec ${features:+--features "$features"} >"$log" 2>&1 \
    || { tail -n 30 "$log" >&2; echo "build of $tag failed (log: $log)" >&2; return 1; }
  cp "$CARGO_TARGET_DIR/$dir/convrec" "$CACHE/bench/bin/convrec-$PROFILE-$tag"
  say "  $tag built in $(($(date +%s) - start)) s"
}

build default ""
declare -A BUILT=([defaults]=default)
if [ "$BACKENDS" = 1 ]; then
  if ! dpkg -s libopenblas-dev >/dev/null 2>&1; then
    say "installing libopenblas-dev for the blas candidate"
    if [ "$(id -u)" = 0 ]; then apt-get install -y -qq libopenblas-dev >/dev/null || true
    else sudo apt-get install -y -qq libopenblas-dev >/dev/null || true; fi
  fi
  for spec in "${CANDIDATES[@]}"; do
    IFS='|' read -r tag features _ _ <<<"$spec"
    key=${features//,/+}; key=${key:-defaults}
    if [ -z "${BUILT[$key]:-}" ]; then
      if build "$tag" "$features"; then BUILT[$key]=$tag; else BUILT[$key]=failed; fi
    fi
  done
fi

# Both sides run at a higher priority than background work (builds, tests) when allowed.
NICE=()
if nice -n -10 true 2>/dev/null; then NICE=(nice -n -10); fi

bin() { echo "$CACHE/bench/bin/convrec-$PROFILE-$1"; }
"$(bin default)" bench texts --out "$OUT/texts.json" >&2

COMMON=(--warmup 2 --min-batches 5 --seconds "$SECONDS_PER_CELL")
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores visible"
  echo "flags: $(grep -m1 flags /proc/cpuinfo | grep -o -w -E 'avx2|fma|avx512f|avx512_vnni|amx_tile' | sort -u | xargs)"
  echo "rustc: $(rustc --version), $PROFILE profile"
  echo "priority: ${NICE[*]:-default}"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"

OURS=() THEIRS=() CANDIDATE_FILES=()
for round in $(seq "$ROUNDS"); do
  say "round $round/$ROUNDS: sentence-transformers"
  "${NICE[@]}" "$VENV/bin/python" scripts/bench_embeddings_st.py --model "$MODEL" \
    --texts "$OUT/texts.json" --json "$OUT/st-$round.json" --threads "$THREADS" \
    --batch-sizes "$BATCHES" --warmup 2 --min-batches 5 --seconds "$SECONDS_PER_CELL" \
    2> >(grep -v -E 'Loading weights|^\s*$' >&2)
  THEIRS+=("$OUT/st-$round.json")

  say "round $round/$ROUNDS: convrec (default build)"
  RAYON_NUM_THREADS="$THREADS" "${NICE[@]}" "$(bin default)" bench embeddings \
    --texts "$OUT/texts.json" --batch-sizes "$BATCHES" "${COMMON[@]}" \
    --json "$OUT/ours-$round.json" >/dev/null
  OURS+=("$OUT/ours-$round.json")

  if [ "$MULTILINGUAL" = 1 ]; then
    say "round $round/$ROUNDS: multilingual-e5-small against MiniLM (default encoder)"
    RAYON_NUM_THREADS="$THREADS" CONVREC__MULTILINGUAL_MODEL__DIR="$CONVREC_MULTILINGUAL_MODEL_DIR" \
      "${NICE[@]}" "$(bin default)" bench embeddings --models default,multilingual \
      --texts "$OUT/texts.json" --batch-sizes "$BATCHES" "${COMMON[@]}" \
      --json "$OUT/models-$round.json" >"$OUT/models-$round.md"
  fi

  for spec in "${CANDIDATES[@]}"; do
    IFS='|' read -r tag features backends extra <<<"$spec"
    [ "$BACKENDS" = 1 ] || [ "$tag" = default ] || continue
    key=${features//,/+}; built=${BUILT[${key:-defaults}]}
    [ "$built" = failed ] && continue
    file="$OUT/candidate-$tag${extra:+-${extra//[^a-zA-Z0-9]/_}}-$round.json"
    say "round $round/$ROUNDS: candidate $tag ($backends${extra:+, $extra})"
    env RAYON_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" $extra "${NICE[@]}" \
      "$(bin "$built")" bench embeddings --texts "$OUT/texts.json" --backends "$backends" \
      --batch-sizes 32 "${COMMON[@]}" --json "$file" >/dev/null
    CANDIDATE_FILES+=("$file")
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

if [ "$HTTP" = 1 ]; then
  PORT="${BENCH_HTTP_PORT:-18080}"
  scripts/stack.sh up >&2
  say "starting convrec serve on 127.0.0.1:$PORT (log: $OUT/serve.log)"
  # One client address sends every request: the per-IP rate limit would answer most with 429.
  CONVREC__SERVER__HOST=127.0.0.1 CONVREC__SERVER__PORT="$PORT" CONVREC__RATE_LIMIT__ENABLED=false \
    "${NICE[@]}" "$(bin default)" serve \
    >"$OUT/serve.log" 2>&1 &
  SERVER=$!
  trap 'kill "$SERVER" 2>/dev/null || true' EXIT
  ready=0
  for _ in $(seq 240); do
    if curl -fsS -o /dev/null -H 'Content-Type: application/json' -d '{"text":"ready?"}' \
      "http://127.0.0.1:$PORT/embed" 2>/dev/null; then ready=1; break; fi
    kill -0 "$SERVER" 2>/dev/null || break
    sleep 0.5
  done
  if [ "$ready" = 1 ]; then
    "${NICE[@]}" python3 scripts/bench_embed_http.py --url "http://127.0.0.1:$PORT" \
      --texts "$OUT/texts.json" --kind short --clients 20 --requests 25 --json "$OUT/http.json" \
      | tee "$OUT/http.txt"
  else
    tail -n 20 "$OUT/serve.log" >&2
    echo "convrec serve did not answer POST /embed (log: $OUT/serve.log)" | tee "$OUT/http.txt"
  fi
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  trap - EXIT
fi

REPORT_ARGS=(--ours "${OURS[@]}" --baseline "${THEIRS[@]}"
  --backends "${OURS[@]}" "${CANDIDATE_FILES[@]}" "${THEIRS[@]}")
python3 scripts/bench_embeddings_report.py "${REPORT_ARGS[@]}" >"$OUT/report.md"
{
  for file in "$OUT"/models-*.md; do
    [ -f "$file" ] || continue
    echo "### multilingual-e5-small against MiniLM ($(basename "$file" .md))"
    echo
    cat "$file"
    echo
  done
  if [ -f "$OUT/http.txt" ]; then
    echo "### HTTP"
    echo
    cat "$OUT/http.txt"
    echo
  fi
  echo '```'
  cat "$OUT/machine.txt"
  echo '```'
} >>"$OUT/report.md"
cat "$OUT/report.md"
say "results: $OUT (report.md, per-batch times in *.json)"
