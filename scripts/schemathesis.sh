#!/usr/bin/env bash
# Runs schemathesis (property-based API testing from the OpenAPI document) against a real
# `crier serve`: every check, the examples, coverage, fuzzing and stateful phases, a fixed seed and
# a bounded number of cases per operation, so a run is repeatable and takes a few minutes on two
# shared cores. Exits non-zero on any failure. What it finds and what is accepted: docs/SCHEMATHESIS.md.
#
# Environment: CRIER_ST_VENV (default ~/.cache/crier-e2e/schemathesis-venv), CRIER_ST_SEED,
# CRIER_ST_MAX_EXAMPLES, CRIER_ST_REPORT (a directory for the JUnit/NDJSON reports).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${CRIER_ST_VENV:-$HOME/.cache/crier-e2e/schemathesis-venv}"
SEED="${CRIER_ST_SEED:-20261202}"
MAX_EXAMPLES="${CRIER_ST_MAX_EXAMPLES:-100}"

if ! "$VENV/bin/st" --version >/dev/null 2>&1; then
  echo "== installing schemathesis (pip, into $VENV)"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet 'schemathesis>=4.3,<5'
fi

cargo build --locked --bin crier

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/channels"
# One credential-free channel (log), so notices can name it and published updates fan out.
cp channels/log.toml "$WORK/channels/"
# A known admin token, given the way operators do: the variable named by admin_token_env.
TOKEN="st-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
CRIER_ADMIN_TOKEN="$TOKEN" RUST_LOG="${RUST_LOG:-warn,crier=info}" target/debug/crier serve \
  --bind 127.0.0.1:0 --data "$WORK/data" --channels "$WORK/channels" --templates templates \
  2>"$WORK/serve.log" &
SERVER_PID=$!

BASE=""
for _ in $(seq 1 300); do
  BASE="$(grep -o 'listening on http://[0-9.:]*' "$WORK/serve.log" | head -n1 | sed 's/listening on //' || true)"
  [ -n "$BASE" ] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "crier serve exited before listening:" >&2
    cat "$WORK/serve.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$BASE" ]; then
  echo "crier serve did not report its address within 30 s:" >&2
  cat "$WORK/serve.log" >&2
  exit 1
fi
echo "== schemathesis against $BASE (seed $SEED, at most $MAX_EXAMPLES cases per operation)"

REPORT_ARGS=()
if [ -n "${CRIER_ST_REPORT:-}" ]; then
  REPORT_ARGS=(--report junit,ndjson --report-dir "$CRIER_ST_REPORT")
fi

start=$(date +%s)
status=0
# scripts/schemathesis.toml turns every check on (`[checks] enabled = true`, the same as
# `--checks all`, which on the command line would override the file's per-operation settings) and
# holds the per-check settings with the reasons for them.
"$VENV/bin/st" --no-color --config-file scripts/schemathesis.toml run "$BASE/api/v1/openapi.json" \
  --phases examples,coverage,fuzzing,stateful \
  --seed "$SEED" \
  --max-examples "$MAX_EXAMPLES" \
  --generation-database none \
  --workers 1 \
  --request-timeout 10 \
  -H "Authorization: Bearer $TOKEN" \
  "${REPORT_ARGS[@]}" || status=$?
echo "== schemathesis took $(( $(date +%s) - start )) s, exit status $status"

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "crier serve died during the run:" >&2
  tail -n 50 "$WORK/serve.log" >&2
  exit 1
fi
if grep -q 'panicked' "$WORK/serve.log"; then
  echo "crier serve panicked during the run:" >&2
  grep -B2 -A5 'panicked' "$WORK/serve.log" >&2
  status=1
fi
exit "$status"
