#!/usr/bin/env python3
"""Writes the seed corpus, fuzz/corpus/<target>/, from the frames, heads, envelopes and
configurations the tests and documents use. Run from anywhere; rerun after changing it.
The seeds are committed; what libFuzzer grows from them (fuzz/work/) is not."""
import os
import re
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def write(target, seeds):
    d = os.path.join(OUT, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in seeds.items():
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


# Client requests: the documented frames (docs/protocol.md) and the tests' own.
REQUESTS = [
    '{"type":"auth","token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2ln"}',
    '{"id":1,"type":"subscribe","channel":"table:42"}',
    '{"id":1,"type":"subscribe","channel":"log:1","since":{"offset":17,"epoch":"x9f"}}',
    '{"id":2,"type":"unsubscribe","channel":"table:42"}',
    '{"id":3,"type":"publish","channel":"c","data":{ "b" : 1.50, "a":[ 1 ] }}',
    '{"id":3,"type":"publish","channel":"chat:lobby","data":"caf\\u00e9 \\ud83d\\ude00"}',
    '{"id":4,"type":"presence","channel":"chat:lobby"}',
    '{"id":5,"type":"history","channel":"log:1","since":17,"limit":50}',
    '{"id":5,"type":"history","channel":"log:1","since":{"offset":16}}',
    '{"id":6,"type":"refresh","token":"t"}',
    '{"id":7,"type":"rpc","method":"game.move","data":{"x":1}}',
    '{"id":8,"type":"ping"}',
    '{"type":"send","user":"u2","data":[1,2,3],"correlation_id":"c-1"}',
    '{"type":"status","status":"away"}',
    '{"type":"event","event":"ready","data":null}',
    '{"type":"nope"}',
    '{"id":9,"type":7}',
    '{"id":18446744073709551615,"type":"ping"}',
    '{"id":1,"type":"subscribe","channel":"bad channel!"}',
    '{"id":1,"type":"subscribe","channel":"#u1"}',
    '{"id":1,"type":"publish","channel":"a\\"b","data":1e400}',
    '[1,2',
]
for text in re.findall(r'json!\((\{"type":[^;]*?\})\)', read("tests/websocket.rs")):
    if "(" not in text and len(REQUESTS) < 40:
        REQUESTS.append(text)
write("protocol_request", {f"req-{i:02}": r for i, r in enumerate(REQUESTS)})


def frame(payload, opcode=1, fin=True, mask=b"\x37\xfa\x21\x3d"):
    """A masked client frame (RFC 6455 §5.2)."""
    if isinstance(payload, str):
        payload = payload.encode()
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def framed(*parts):
    """The ws_decoder target's framed mode: [flags, len, payload]..."""
    out = b""
    for fin, opcode, payload in parts:
        if isinstance(payload, str):
            payload = payload.encode()
        out += bytes([(0x80 if fin else 0) | opcode, len(payload)]) + payload
    return out


# ws_decoder: byte 0 the limits, byte 1 the mode (even: raw bytes, odd: framed) and reads.
RAW, FRAMED = b"\xff\x00", b"\xff\x01"
snowman = "☃ café".encode()
ws = {
    "raw-text": RAW + frame(REQUESTS[1]),
    "raw-pipelined": RAW + frame(REQUESTS[1]) + frame(REQUESTS[4]) + frame(REQUESTS[11]),
    "raw-small-reads": b"\xff\x04" + frame(REQUESTS[4]) + frame(b"", opcode=9),
    "raw-fragmented": RAW + frame('{"type":', fin=False) + frame(b"hi", opcode=9)
    + frame('"ping"}', opcode=0),
    "raw-utf8-split": RAW + frame(snowman[:2], fin=False) + frame(snowman[2:], opcode=0),
    "raw-binary": RAW + frame(b"\x00\x01\x02", opcode=2),
    "raw-close": RAW + frame(struct.pack(">H", 1000) + b"bye", opcode=8),
    "raw-close-empty": RAW + frame(b"", opcode=8),
    "raw-pong": RAW + frame(b"p", opcode=10),
    "raw-len16": RAW + frame("x" * 200),
    "raw-len64": b"\x0f\x00" + frame("y" * 70000)[:64],
    "raw-unmasked": RAW + b"\x81\x05hello",
    "raw-rsv": RAW + b"\xc1\x80\x00\x00\x00\x00",
    "framed-fragments": FRAMED + framed((False, 1, '{"a"'), (False, 0, ":"), (True, 0, "1}")),
    "framed-interleaved": FRAMED + framed((False, 2, "ab"), (True, 9, "x"), (True, 10, ""),
                                          (True, 0, "cd")),
    "framed-utf8": FRAMED + framed((False, 1, snowman[:1]), (False, 0, snowman[1:3]),
                                   (True, 0, snowman[3:])),
    "framed-bad-utf8": FRAMED + framed((True, 1, b"\xc3\x28")),
    "framed-close-codes": FRAMED + framed((True, 8, struct.pack(">H", 1001)),
                                          (True, 8, struct.pack(">H", 999))),
    "framed-too-many": b"\x00\x41" + framed(*[(False, 1 if i == 0 else 0, "a") for i in range(20)]),
    "framed-continuation-alone": FRAMED + framed((True, 0, "x")),
}
write("ws_decoder", ws)

# HTTP upgrade heads, as the tests' client and browsers send them.
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = ("GET /ws{q} HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY + "\r\n"
           "Sec-WebSocket-Version: 13\r\n{extra}\r\n")
heads = {
    "upgrade": UPGRADE.format(q="", extra=""),
    "upgrade-query-token": UPGRADE.format(q="?token=abc.def.ghi&client=web%2F1.0+beta", extra=""),
    "upgrade-bearer": UPGRADE.format(q="", extra="Authorization: Bearer abc.def\r\n"),
    "upgrade-browser": UPGRADE.format(
        q="?client=x", extra="Origin: http://localhost\r\nConnection: keep-alive, Upgrade\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        "User-Agent: Mozilla/5.0\r\n"),
    "upgrade-pipelined-frame": UPGRADE.format(q="", extra="").encode() + frame(REQUESTS[0]),
    "health": "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
    "ready": "GET /ready HTTP/1.0\r\n\r\n",
    "post": "POST /ws HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    "bad-version": UPGRADE.format(q="", extra="").replace("13", "8"),
    "bad-percent": "GET /ws?token=%zz%4&client=%C3%A9%FF HTTP/1.1\r\n\r\n",
    "partial": "GET /ws HTTP/1.1\r\nHost: loc",
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "lf-only": "GET / HTTP/1.1\nHost: x\n\n",
}
write("http_head", heads)


def envelope(kind, origin, cause, target, payload):
    o, c, t = origin.encode(), cause.encode(), target.encode()
    p = payload.encode() if isinstance(payload, str) else payload
    return (b"RH1" + kind.encode() + bytes([len(o)]) + o + bytes([len(c)]) + c
            + struct.pack(">H", len(t)) + t + p)


envs = {
    "message": envelope("m", "inst-1", "corr", "table:42",
                        '{"type":"message","channel":"table:42","data":{"x":1},"from":"u1"}'),
    "message-offset": envelope("m", "inst-2", "", "log:1",
                               '{"type":"message","channel":"log:1","data":1,"offset":42}'),
    "direct": envelope("d", "inst-1", "", "user\nwith newline", '{"type":"direct","data":1}'),
    "broadcast-all": envelope("b", "i", "", "", '{"type":"broadcast","data":"maintenance"}'),
    "disconnect": envelope("x", "i", "c-9", "kicked", "banned"),
    "revoke": envelope("r", "i", "c", "t", '{"user":"ru","issued_before":1767225600}'),
    "revoke-jti": envelope("r", "i", "", "", '{"jti":"token-1","until":1767229200}'),
    "subscribe": envelope("s", "i", "", "srv-sub", "vip:1"),
    "unsubscribe": envelope("u", "i", "", "srv-sub", "vip:1"),
    "presence-query": envelope("q", "i", "", "chat:lobby", "17"),
    "presence-answer": envelope("a", "i", "", "17",
                                '[{"user":"u1","conns":2,"status":"online","info":{}}]'),
    "bad-kind": b"RH1z\x00\x00\x00\x00",
    "not-envelope": '{"op":"publish","channel":"c","data":1}',
    "bad-utf8-origin": b"RH1m\x02\xff\xfe\x00\x00\x01c{}",
}
write("relay_envelope", envs)

# Configurations: the documented examples, the k8s ConfigMap, the tests' own, with variables
# and flags after NUL bytes (the config target's input).
def toml_blocks(text):
    return re.findall(r"```toml\n(.*?)```", text, re.S)


configs = {}
docs = [read(p) for p in ("docs/configuration.md", "docs/protocol.md", "docs/rpc.md")]
for i, block in enumerate(b for d in docs for b in toml_blocks(d)):
    configs[f"docs-{i:02}"] = block
cm = read("k8s/base/configmap.yaml")
m = re.search(r"ringhub\.toml: \|\n((?:    .*\n|\n)*)", cm)
if m:
    configs["k8s-configmap"] = "\n".join(l[4:] for l in m.group(1).splitlines()) + "\n"
configs.update({
    "layers": "shards = 2\nlog = \"debug\"\nping_interval = \"3s\"\n[namespaces.chat]\npublic = true\n"
    "\0SHARDS=3\nLOG=warn\n\0shards=4\n",
    "vars-typed": "\0PING_INTERVAL=1s\nECHO_ENDPOINT=true\nDRIVER=epoll\nMAX_MESSAGE_SIZE=128\n"
    "API_KEYS=" + "ab" * 32 + "\nNAMESPACES=chat\n",
    "rpc": "rpc_url = \"http://127.0.0.1:9/rpc\"\n[rpc_methods]\n\"game.*\" = \"http://127.0.0.1:9/game\"\n",
    "history": "[namespaces.log]\nhistory_size = 100000\nhistory_ttl = \"10m\"\n"
    "[namespaces.\"*\"]\npresence = true\njoin_leave = true\n",
    "bad-duration": "[namespaces.chat]\nhistory_ttl = \"soon\"\n",
    "typo": "ping_intervall = \"1s\"\n",
    "bad-toml": "shards = [\n",
    "bad-namespace": "[namespaces.\"a:b\"]\npublic = true\n",
})
write("config", configs)
print({t: len(os.listdir(os.path.join(OUT, t))) for t in sorted(os.listdir(OUT))})
