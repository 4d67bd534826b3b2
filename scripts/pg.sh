#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL: `bash scripts/pg.sh cargo test ...`.
#
# Installs Debian's `postgresql` with apt-get when no initdb is found under
# /usr/lib/postgresql/*/bin, creates a cluster with initdb in a temp dir (as a non-root user:
# initdb refuses root), starts it on a free loopback port (fsync on, unix socket in the temp dir,
# TLS on with a CA made here by openssl), creates a database and a password-authenticated role, and
# runs the command with
#   CRIER_TEST_PG_URL       postgres://crier_test:PASSWORD@127.0.0.1:PORT/crier_test
#   CRIER_TEST_PG_CA        the PEM file of the CA that signed the server's certificate
#   CRIER_TEST_PG_REQUIRED  1 (the PostgreSQL tests fail instead of skipping without the URL)
# and, for a test that restarts the cluster (`pg_ctl restart -m fast`, tests/api/two_nodes.rs):
#   CRIER_TEST_PG_CTL       the pg_ctl binary
#   CRIER_TEST_PG_DATA      the cluster's data directory
#   CRIER_TEST_PG_LOG       its server log
#   CRIER_TEST_PG_OS_USER   the OS user the cluster runs as (pg_ctl must run as it)
# Restarting breaks every other test using the cluster at that moment: such a test runs in a
# pg.sh invocation of its own.
# The cluster is stopped and its directory removed when the command ends, however it ends. If the
# cluster cannot be started the script fails loudly and the command is not run, so a broken setup
# is never hidden behind skipped tests.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: bash scripts/pg.sh COMMAND [ARGS...]" >&2
  exit 2
fi

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
PGBIN=$(find_bin || true)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
  echo "== installing postgresql (apt-get) for the PostgreSQL tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  PGBIN=$(find_bin || true)
fi
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
  echo "pg.sh: no initdb under /usr/lib/postgresql/*/bin after installing postgresql" >&2
  exit 1
fi
if ! command -v openssl >/dev/null 2>&1; then
  echo "== installing openssl (apt-get) for the PostgreSQL test certificates"
  apt-get update -qq && apt-get install -y -qq openssl >/dev/null
fi

# initdb and postgres refuse to run as root: use a system user made for this.
PGUSER_OS=$(id -un)
as_pg() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
  PGUSER_OS=crier-pg
  if ! id -u "$PGUSER_OS" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER_OS"
  fi
  as_pg() { runuser -u "$PGUSER_OS" -- "$@"; }
fi

DIR=$(mktemp -d "${TMPDIR:-/tmp}/crier-pg.XXXXXX")
chmod 755 "$DIR"
DATA="$DIR/data"
stop() {
  local rc=$?
  if [ -f "$DATA/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$DIR"
  exit "$rc"
}
trap stop EXIT
trap 'exit 130' INT TERM

chown "$PGUSER_OS" "$DIR"
PASSWORD=$(openssl rand -hex 24)
as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=reject \
  --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 || {
  cat "$DIR/initdb.log" >&2
  echo "pg.sh: initdb failed" >&2
  exit 1
}

# A CA and a server certificate, so the tests can connect with sslmode=require and verify.
(
  cd "$DIR"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=crier test CA" \
    -keyout ca.key -out ca.pem -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext.cnf
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile ext.cnf -out server.pem 2>/dev/null
  cp server.pem server.key "$DATA/"
)
chown "$PGUSER_OS" "$DATA/server.pem" "$DATA/server.key"
chmod 600 "$DATA/server.key"
chmod 644 "$DIR/ca.pem"

# Password authentication over TCP for everyone but the bootstrap superuser on the socket.
cat >"$DATA/pg_hba.conf" <<EOF
local all postgres trust
host all crier_test 127.0.0.1/32 scram-sha-256
EOF

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
started=0
for _try in 1 2 3; do
  PORT=$(free_port)
  if as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$DIR -c fsync=on \
     -c ssl=on -c ssl_cert_file=server.pem -c ssl_key_file=server.key \
     -c max_connections=200" >/dev/null; then
    started=1
    break
  fi
done
if [ "$started" -ne 1 ]; then
  cat "$DIR/server.log" >&2 || true
  echo "pg.sh: PostgreSQL did not start (see the server log above)" >&2
  exit 1
fi

# The test role may create databases: each test works in a database of its own.
as_pg "$PGBIN/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
  -c "CREATE ROLE crier_test LOGIN CREATEDB PASSWORD '$PASSWORD'" \
  -c "CREATE DATABASE crier_test OWNER crier_test" >/dev/null

export CRIER_TEST_PG_URL="postgres://crier_test:$PASSWORD@127.0.0.1:$PORT/crier_test"
export CRIER_TEST_PG_CA="$DIR/ca.pem"
export CRIER_TEST_PG_REQUIRED=1
export CRIER_TEST_PG_CTL="$PGBIN/pg_ctl"
export CRIER_TEST_PG_DATA="$DATA"
export CRIER_TEST_PG_LOG="$DIR/server.log"
export CRIER_TEST_PG_OS_USER="$PGUSER_OS"
echo "== PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (cluster in $DIR, removed afterwards)"
"$@"
