#!/usr/bin/env python3
"""Writes the hand-made seed inputs of each fuzz target into corpus/<target>/seed-*.

Run once when a target's input format changes; `cargo fuzz cmin` then keeps what adds coverage.
"""
import json, os, struct, sys

here = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(here, "..", "corpus")

def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

# cron: zone byte, i64 LE start seconds, u32 LE last-fire minutes (0 none), expression.
T_2026_03_29 = 1774740000   # 2026-03-28T23:20Z, just before the Helsinki spring-forward
T_2026_10_25 = 1792893600   # 2026-10-24T22:00Z, before the fall-back
exprs = ["0 9 * * 1-5", "*/30 * * * *", "30 3 * * *", "@hourly", "@daily", "@weekly",
         "@monthly", "@yearly", "0 0 29 2 *", "15 2,14 1 jan,jul mon-fri", "0 12 */2 * sun",
         "59 23 31 12 *", "0 0 1-7 * 1", "5-55/10 8-18 * * MON-FRI", "0 0 * * fri-sun",
         "0 0 30 2 *", "* * * * 8", "0 0 0 0 0 0"]
for i, e in enumerate(exprs):
    zone = i % 9
    start = T_2026_03_29 if i % 2 == 0 else T_2026_10_25
    last = 0 if i % 3 else 525600 + 7
    put("cron", f"{i:02}", bytes([zone]) + struct.pack("<qI", start, last) + e.encode())

# fit: channel byte (0 sms, 1 x, 2 mastodon, 3 bluesky, 4 telegram, 5 discord, 6 email),
# u16 LE size, policy byte (0 thread, 1 shorten, 2 reject), text, optional NUL + link.
texts = [
    "Flights from Helsinki are delayed by about two hours because of a volcanic ash cloud. "
    "We will update this page at 14:00. Read more at https://status.example.com/i/42 .",
    "Lennot Helsingistä ovat myöhässä noin kaksi tuntia tuhkapilven vuoksi. Seuraava tiedote "
    "klo 14.00.\n\nFlyg från Helsingfors är försenade.",
    "Проблема с регистрацией. Мы работаем над этим. 🛫🛬 ✈️ 👩‍👩‍👧",
    "a" * 400,
    "   \n\n   leading and trailing whitespace only made it long   \n\n" + " " * 200,
    "https://example.com/" + "x" * 300,
    "欠航のお知らせ。ご迷惑をおかけします。" * 10,
]
n = 0
for t in texts:
    for rule, size in [(0, 1), (0, 3), (1, 0), (2, 30), (3, 0), (5, 0)]:
        for policy in (0, 1):
            link = b"\0https://status.example.com/i/42" if policy == 1 else b""
            put("fit", f"{n:03}", bytes([rule]) + struct.pack("<H", size) + bytes([policy])
                + t.encode() + link)
            n += 1

# csv_import: request bodies.
csvs = [
    "email,phone,locale,components\nanna@example.com,,fi,api;web\n,+358401234567,sv,\n"
    "bo@example.com,,en-GB,check-in\n",
    "phone\n+35840 123 4567\n00358401234568\n0401234567\n+358401234567\n",
    "Email,Locale\n\"Anna <anna@example.com>\",fi\n\"carl@EXAMPLE.com\",sv_fi\nnot-an-address,en\n",
    "email,components\nx@example.com,\"api; unknown\"\ny@example.com,\n\"unterminated,\n",
    "\ufeffemail\nz@example.com\n",
    "email,phone\nboth@example.com,+358401234567\n,\n",
    "name,email\nAnna,anna@example.com\n",
]
for i, c in enumerate(csvs):
    put("csv_import", f"{i:02}", c.encode())

# hook_payloads: kind byte (even Alertmanager, odd Grafana; bit 1 clear = custom source), JSON.
am = {
    "version": "4", "groupKey": "{}:{alertname=\"HighLatency\"}", "truncatedAlerts": 0,
    "status": "firing", "receiver": "crier", "groupLabels": {"alertname": "HighLatency"},
    "commonLabels": {"alertname": "HighLatency", "severity": "critical"},
    "commonAnnotations": {"summary": "Checkout is slow"}, "externalURL": "http://am:9093",
    "alerts": [
        {"status": "firing", "labels": {"alertname": "HighLatency", "instance": "web-1"},
         "annotations": {"summary": "web-1 p99 over 2s"}, "startsAt": "2026-11-23T08:00:00Z",
         "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "aaa111"},
        {"status": "resolved", "labels": {"alertname": "HighLatency", "impact": "major"},
         "annotations": {"description": "  multi\nline  "}},
    ],
}
grafana = {
    "receiver": "crier", "status": "firing", "orgId": 1, "version": "1",
    "groupKey": "{}/{}:{}", "title": "[FIRING:1] DiskFull", "state": "alerting",
    "message": "disk", "groupLabels": {}, "commonLabels": {"alertname": "DiskFull"},
    "commonAnnotations": {},
    "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull"}, "annotations": {},
                "fingerprint": "", "valueString": "[ var='A' value=97 ]"}],
}
put("hook_payloads", "00", b"\x00" + json.dumps(am).encode())
put("hook_payloads", "01", b"\x03" + json.dumps(grafana).encode())
put("hook_payloads", "02", b"\x00" + json.dumps({"version": "4", "alerts": []}).encode())

# codec: arbitrary's enum tag (4 bytes, 0 = raw bytes) then one encoded delivery (see
# src/store/codec.rs for the layout).
def s(b):
    return struct.pack(">I", len(b)) + b
def tm(secs, nanos=0):
    return struct.pack(">qI", secs, nanos)
rec = (b"\x01" + bytes(range(16)) + bytes(range(16, 32)) + struct.pack(">I", 3)
       + bytes(range(32, 48)) + s(b"sms")
       + b"\x01" + bytes(range(48, 64)) + b"\x01" + s(b"+358401234567") + s(b"fi")
       + s(b"tok-123")
       + b"\x00" + b"\x03" + struct.pack(">II", 7, 0) + tm(1792893600, 5)
       + b"\x01" + s(b"HTTP 503") + b"\x00" + b"\x01" + s(b"undelivered")
       + b"\x01" + struct.pack(">I", 30003) + tm(1792893000) + tm(1792893600))
put("codec", "00", b"\x00\x00\x00\x00" + rec)
endpoint = (b"\x01" + bytes(16) + bytes(16) + struct.pack(">I", 0) + bytes(16) + s(b"hook")
            + b"\x00" + b"\x01" + s(b"custom-key") + b"\x02" + struct.pack(">II", 1, 0)
            + tm(0) + b"\x00" + b"\x01" + s(b"SM123") + b"\x00" + b"\x00" + tm(-1) + tm(1, 999999999))
put("codec", "01", b"\x00\x00\x00\x00" + endpoint)
put("codec", "02", b"\x00\x00\x00\x00" + b'{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}')
