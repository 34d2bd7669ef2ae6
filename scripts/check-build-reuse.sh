#!/usr/bin/env bash
# Does the test build reuse every dependency the run build compiled?
#
#   bash scripts/check-build-reuse.sh [--fail-fast] [CARGO_ARGS...]
#
# Builds what `scripts/test.sh` builds (`cargo test --workspace --all-targets --no-run`) and
# then what `scripts/run.sh` builds (`cargo build --bin convrec`), both into the same
# CARGO_TARGET_DIR, and compares the dependency artifacts the two report: their file names
# carry cargo's metadata hash, which changes with a crate's features, its profile and its
# dependencies' hashes. Every dependency unit of the run build must be one of the test
# build's; the ones that are not are printed (with both feature sets) and the exit status is 1.
# Such a unit is compiled twice on a fresh machine: once by run.sh, again by test.sh.
#
# On a warm target dir both builds are fresh and this takes seconds. On a cold one it costs
# the test build, and nothing more when the two agree (the run build is then a subset of it).
# --fail-fast (what scripts/test.sh uses, right after its own build): stop the run build at
# the first dependency it starts compiling instead of compiling it, and name it; rerun without
# the flag for the whole list.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/convrec/target}"

FAIL_FAST=0
if [ "${1:-}" = "--fail-fast" ]; then
  FAIL_FAST=1
  shift
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

cargo test --workspace --all-targets --no-run --message-format=json-render-diagnostics "$@" >"$TMP/test.json"

exec python3 - "$TMP" "$FAIL_FAST" "$@" <<'PY'
import json, os, re, signal, subprocess, sys

tmp, fail_fast, cargo_args = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]

# The run build, watching cargo's status lines: a dependency is "Compiling foo v1.2.3", a
# workspace package has its path in parentheses ("Compiling convrec v0.1.0 (/work/...)").
compiling_dep = re.compile(r"^\s*Compiling (\S+) v(\S+)\s*$")
run_json = os.path.join(tmp, "run.json")
with open(run_json, "w") as out:
    cargo = subprocess.Popen(
        ["cargo", "build", "--bin", "convrec", "--message-format=json-render-diagnostics", *cargo_args],
        stdout=out, stderr=subprocess.PIPE, text=True, start_new_session=True)
    first = None
    for line in cargo.stderr:
        sys.stderr.write(line)
        m = compiling_dep.match(line)
        if fail_fast and m and first is None:
            first = f"{m.group(1)} {m.group(2)}"
            os.killpg(cargo.pid, signal.SIGTERM)
    status = cargo.wait()
if first is not None:
    print(f"check-build-reuse: the run build compiles {first} after the test build: the two "
          "builds resolve different features for it (or for a dependency of it). "
          "`bash scripts/check-build-reuse.sh` lists every such crate.", file=sys.stderr)
    sys.exit(1)
if status != 0:
    sys.exit(status)

def units(path):
    """Dependency (non-workspace) units: file names -> (package, version, target, features)."""
    found = {}
    for line in open(path):
        msg = json.loads(line)
        if msg.get("reason") != "compiler-artifact" or msg["package_id"].startswith("path+"):
            continue
        name_version = msg["package_id"].rsplit("#", 1)[-1]
        name, _, version = name_version.rpartition("@")
        if not name:  # "registry+...crates.io-index#1.0.0" (package id without a name)
            name = msg["target"]["name"]
        key = tuple(sorted(msg["filenames"]))  # build/<crate>-<hash>/build-script-build: the hash is in the folder
        found[key] = (name, version, msg["target"]["name"], tuple(msg["features"]))
    return found

run, test = units(run_json), units(os.path.join(tmp, "test.json"))
again = sorted((v, k) for k, v in run.items() if k not in test)
print(f"check-build-reuse: {len(run)} dependency units in the run build, "
      f"{len(run) - len(again)} reused by the test build, {len(again)} compiled again")
for (name, version, target, feats), _ in again:
    # The test build's own unit(s) of that crate: those it does not share with the run build
    # (a crate built for the host too, e.g. for a proc-macro, has a second, shared unit).
    others = [f for k, (n, v, t, f) in test.items() if (n, v, t) == (name, version, target)
              and k not in run]
    if any(set(o) != set(feats) for o in others):
        diffs = "; ".join(
            "test adds " + (",".join(sorted(set(o) - set(feats))) or "-")
            + ", lacks " + (",".join(sorted(set(feats) - set(o))) or "-") for o in others)
        print(f"  {name} {version}: {diffs}")
    else:
        print(f"  {name} {version}: same features, a dependency of it differs")
sys.exit(1 if again else 0)
PY
