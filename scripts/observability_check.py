#!/usr/bin/env python3
"""Run by scripts/observability-test.sh: sends traffic to the running hubs, waits until the
running Prometheus has scraped them, then evaluates every PromQL expression of the Grafana
dashboard and of the alerting rules through Prometheus's HTTP API. Fails on an expression
that errors, or that names a ringhub_* metric the hubs do not export.

Usage: observability_check.py PROMETHEUS_URL API_KEY PUBLIC_ADDR:ADMIN_ADDR [...]
Environment: JWT_SECRET (the hubs' HS256 secret).
"""
import base64, hashlib, hmac, json, os, re, socket, sys, time
import urllib.parse, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASHBOARD = os.path.join(ROOT, "deploy/grafana/ringhub.json")
RULES = os.path.join(ROOT, "deploy/prometheus/ringhub-alerts.yml")


def fail(msg):
    print(f"observability: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(secret, user):
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    now = int(time.time())
    claims = {"sub": user, "iat": now, "exp": now + 600, "channels": ["*"], "publish": ["*"]}
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def ws_frame(text):
    """A masked client text frame (payload under 126 bytes)."""
    data = text.encode()
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def ws_client(addr, token):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws?token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = s.recv(4096)
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        fail(f"websocket upgrade to {addr} refused: {head[:200]!r}")
    return s


def http(method, url, key=None, body=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def traffic(hubs, key, secret):
    """Connections, subscriptions, API publishes (deliveries), refused tokens, API errors."""
    clients = []
    for public, admin in hubs:
        for n in range(3):
            s = ws_client(public, jwt(secret, f"u{n}"))
            s.sendall(ws_frame(json.dumps({"type": "subscribe", "channel": "obs", "id": 1})))
            clients.append(s)
        host, port = public.rsplit(":", 1)
        bad = socket.create_connection((host, int(port)), timeout=5)
        bad.sendall(f"GET /ws?token=not.a.jwt HTTP/1.1\r\nHost: {public}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        bad.recv(4096)
        bad.close()
    time.sleep(0.3)  # the subscribe frames reach the shards
    for _, admin in hubs:
        for _ in range(5):
            status, _ = http("POST", f"http://{admin}/api/publish", key, {"channel": "obs", "data": {"n": 1}})
            if status != 200:
                fail(f"POST /api/publish on {admin}: {status}")
        http("GET", f"http://{admin}/api/info", key)
        http("GET", f"http://{admin}/api/info", "wrong-key")
        http("GET", f"http://{admin}/api/history/obs", key)
    return clients


def prom(base, path, **params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def wait_for_scrapes(base, hubs, scrapes=3):
    """Until Prometheus has scraped every hub at least `scrapes` times after the traffic."""
    deadline = time.time() + 20
    want = len(hubs)
    while time.time() < deadline:
        r = prom(base, "/api/v1/query", query='count_over_time(ringhub_api_requests_total{endpoint="api_publish",status="200"}[1m])')
        ready = [s for s in r.get("data", {}).get("result", []) if float(s["value"][1]) >= scrapes]
        if len(ready) >= want:
            return
        time.sleep(0.25)
    fail(f"Prometheus did not scrape the {want} hubs {scrapes} times after the traffic within 20 s")


def dashboard_exprs():
    d = json.load(open(DASHBOARD))
    out = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            out.append((f'panel "{p["title"]}" {t["refId"]}', t["expr"]))
    for v in d["templating"]["list"]:
        q = v.get("query")
        if isinstance(q, dict):
            m = re.match(r"label_values\((\w+),\s*(\w+)\)", q["query"])
            if m:
                out.append((f'variable "{v["name"]}"', m.group(1)))
    return out


def rule_exprs():
    # The rules file is plain enough to read without a YAML library: `expr:` lines, some
    # with a `|` block below them.
    out, lines = [], open(RULES).read().splitlines()
    alert = None
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("- alert:"):
            alert = line.split(":", 1)[1].strip()
        if line.startswith("expr:"):
            expr = line[5:].strip()
            if expr == "|":
                indent = len(lines[i + 1]) - len(lines[i + 1].lstrip())
                block = []
                while i + 1 < len(lines) and (len(lines[i + 1]) - len(lines[i + 1].lstrip()) >= indent) and lines[i + 1].strip():
                    i += 1
                    block.append(lines[i].strip())
                expr = " ".join(block)
            out.append((f"alert {alert}", expr))
        i += 1
    return out


def main():
    base, key = sys.argv[1], sys.argv[2]
    hubs = [tuple(a.split("@")) for a in sys.argv[3:]]
    clients = traffic(hubs, key, os.environ["JWT_SECRET"])
    wait_for_scrapes(base, hubs)
    names = set(prom(base, "/api/v1/label/__name__/values")["data"])
    exported = {n for n in names if n.startswith("ringhub_")}
    exprs = dashboard_exprs() + rule_exprs()
    failures, empty = [], []
    for where, expr in exprs:
        q = expr.replace('=~"$instance"', '=~".*"').replace("$__rate_interval", "15s")
        for m in set(re.findall(r"\bringhub_[a-z0-9_]+", q)):
            if m not in exported:
                failures.append(f"{where}: names {m}, which the hubs do not export")
        r = prom(base, "/api/v1/query", query=q)
        if r.get("status") != "success":
            failures.append(f"{where}: {r.get('errorType')}: {r.get('error')}\n    {q}")
        elif not r["data"]["result"] and not where.startswith("alert"):
            empty.append(where)
    for s in clients:
        s.close()
    n_dash = len(dashboard_exprs())
    print(f"observability: {len(exprs)} expressions ({n_dash} dashboard, {len(exprs) - n_dash} rules) "
          f"evaluated against {len(hubs)} hubs; {len(exported)} ringhub_* metrics exported")
    if empty:
        print("observability: no series yet (fine: nothing of that kind happened): " + "; ".join(empty))
    if failures:
        fail("\n  " + "\n  ".join(failures))
    print("observability: ok")


if __name__ == "__main__":
    main()
