#!/usr/bin/env python3
"""A real Matrix homeserver for crier's e2e test: Synapse (pip package matrix-synapse) on
loopback with SQLite, in WORK_DIR. It writes its own config (client API only, no federation,
generous rate limits), generates the signing key, starts Synapse, registers the user "crier"
through the shared-secret registration API, and prints one line

    synapse listening on URL user=@crier:localhost token=ACCESS_TOKEN

then runs until it is killed (Synapse is told to stop when this process dies).

Synapse runs with the Python named by $CRIER_SYNAPSE_PYTHON, else the virtualenv that
scripts/test.sh installs it into ($CRIER_SYNAPSE_VENV, by default ~/.cache/crier-e2e/synapse-venv),
else this Python.

Usage: synapse_server.py WORK_DIR
"""
import ctypes
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

DEFAULT_VENV = os.environ.get("CRIER_SYNAPSE_VENV") or os.path.expanduser("~/.cache/crier-e2e/synapse-venv")


def synapse_python():
    candidates = [os.environ.get("CRIER_SYNAPSE_PYTHON"), os.path.join(DEFAULT_VENV, "bin", "python"), sys.executable]
    for py in candidates:
        if py and os.path.exists(py):
            ok = subprocess.run([py, "-c", "import synapse"], capture_output=True).returncode == 0
            if ok:
                return py
    sys.exit("synapse_server: matrix-synapse is not installed (scripts/test.sh installs it: "
             f"python3 -m venv {DEFAULT_VENV} && {DEFAULT_VENV}/bin/pip install matrix-synapse)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(d, port, shared_secret):
    cfg = os.path.join(d, "homeserver.yaml")
    log_cfg = os.path.join(d, "log.yaml")
    with open(log_cfg, "w") as f:
        f.write("version: 1\n"
                "formatters:\n  plain:\n    format: '%(asctime)s %(levelname)s %(name)s %(message)s'\n"
                "handlers:\n  console:\n    class: logging.StreamHandler\n    formatter: plain\n"
                "    stream: ext://sys.stderr\n"
                "root:\n  level: ERROR\n  handlers: [console]\n"
                "disable_existing_loggers: false\n")
    limit = "{per_second: 1000, burst_count: 1000}"
    with open(cfg, "w") as f:
        f.write(f"""server_name: "localhost"
pid_file: "{d}/homeserver.pid"
listeners:
  - port: {port}
    tls: false
    type: http
    x_forwarded: false
    bind_addresses: ['127.0.0.1']
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "{d}/homeserver.db"
log_config: "{log_cfg}"
media_store_path: "{d}/media_store"
signing_key_path: "{d}/localhost.signing.key"
registration_shared_secret: "{shared_secret}"
macaroon_secret_key: "{secrets.token_hex(32)}"
form_secret: "{secrets.token_hex(32)}"
report_stats: false
enable_registration: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
presence:
  enabled: false
rc_message: {limit}
rc_registration: {limit}
rc_login:
  address: {limit}
  account: {limit}
  failed_attempts: {limit}
""")
    return cfg


def die_with_parent():
    # Linux: SIGTERM this child when the parent (this script) dies, even by SIGKILL.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = os.path.abspath(sys.argv[1])
    os.makedirs(d, exist_ok=True)
    py = synapse_python()
    port = free_port()
    shared_secret = secrets.token_hex(16)
    cfg = write_config(d, port, shared_secret)
    subprocess.run([py, "-m", "synapse.app.homeserver", "--config-path", cfg, "--generate-keys"],
                   check=True, capture_output=True)
    proc = subprocess.Popen([py, "-m", "synapse.app.homeserver", "--config-path", cfg],
                            preexec_fn=die_with_parent, stdout=subprocess.DEVNULL)

    def stop(*_):
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while True:
        if proc.poll() is not None:
            sys.exit(f"synapse_server: Synapse exited with {proc.returncode}")
        try:
            http("GET", f"{url}/_matrix/client/versions")
            break
        except OSError:
            if time.time() > deadline:
                stop()
            time.sleep(0.3)
    # Shared-secret registration (Synapse admin API): HMAC-SHA1 over nonce, user, password, role.
    nonce = http("GET", f"{url}/_synapse/admin/v1/register")["nonce"]
    user, password = "crier", secrets.token_hex(12)
    mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\x00".join([nonce.encode(), user.encode(), password.encode(), b"notadmin"]))
    reg = http("POST", f"{url}/_synapse/admin/v1/register",
               {"nonce": nonce, "username": user, "password": password, "admin": False, "mac": mac.hexdigest()})
    print(f"synapse listening on {url} user={reg['user_id']} token={reg['access_token']}", flush=True)
    proc.wait()
    sys.exit(f"synapse_server: Synapse exited with {proc.returncode}")


if __name__ == "__main__":
    main()
