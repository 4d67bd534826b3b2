#!/usr/bin/env python3
"""An SMTP sink that requires STARTTLS, for examples/bench_email.rs: aiosmtpd on loopback (as the
e2e test's tests/e2e/smtp_server.py, without AUTH and without storing anything). It makes its own
CA and a certificate for "localhost" / 127.0.0.1 with openssl, prints

    smtp_tls_sink listening on PORT ca=PATH

and then, whenever the count changed, a line "count N" (N = messages accepted so far), at most
every 20 ms.

Usage: smtp_tls_sink.py DIR        (needs: pip install 'aiosmtpd>=1.4,<2'; openssl)
"""
import os
import socket
import ssl
import subprocess
import sys
import time

from aiosmtpd.controller import Controller


def make_certs(d):
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, crt = os.path.join(d, "server.key"), os.path.join(d, "server.csr"), os.path.join(d, "server.pem")
    ext = os.path.join(d, "ext.cnf")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt,
        "-days", "2", "-subj", "/CN=crier bench CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    return ca_crt, crt, key


class Count:
    def __init__(self):
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        return "250 2.0.0 Ok: queued"


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    ca, crt, key = make_certs(d)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(crt, key)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = Count()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="localhost",
                            tls_context=ctx, require_starttls=True)
    controller.start()
    print(f"smtp_tls_sink listening on {port} ca={ca}", flush=True)
    last = -1
    try:
        while True:
            if handler.n != last:
                last = handler.n
                print(f"count {last}", flush=True)
            time.sleep(0.02)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
