"""The binary protocol from a client ringhub did not write: Python `websockets` with
`protobuf` classes generated from proto/ by grpcio-tools' protoc, against a running hub.

Usage: proto_test.py ws://HOST:PORT/ws TOKEN_A TOKEN_B (run by scripts/proto-test.sh,
which generates the classes into a directory on PYTHONPATH). Tokens may publish on and
subscribe to `chat:*` and `game:*` (a namespace with deltas).
"""

import asyncio
import json
import sys

import websockets
from ringhub.v1 import client_pb2, hub_pb2

URL, TOKEN_A, TOKEN_B = sys.argv[1:4]
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


FOSSIL_DIGITS = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"


def fossil_apply(base, delta):
    """A Fossil delta applied to `base`, written from docs/protocol.md ("Deltas") alone."""
    pos = 0

    def number():
        nonlocal pos
        start, n = pos, 0
        while pos < len(delta) and delta[pos] in FOSSIL_DIGITS:
            n = n * 64 + FOSSIL_DIGITS.index(delta[pos])
            pos += 1
        if pos == start:
            raise ValueError("a number expected")
        return n

    size = number()
    if delta[pos : pos + 1] != b"\n":
        raise ValueError("a newline expected")
    pos += 1
    out = bytearray()
    while pos < len(delta):
        n = number()
        op = delta[pos : pos + 1]
        pos += 1
        if op == b"@":
            offset = number()
            if delta[pos : pos + 1] != b",":
                raise ValueError("a comma expected")
            pos += 1
            out += base[offset : offset + n]
        elif op == b":":
            out += delta[pos : pos + n]
            pos += n
        elif op == b";":
            padded = bytes(out) + b"\0" * (-len(out) % 4)
            words = (int.from_bytes(padded[i : i + 4], "big") for i in range(0, len(padded), 4))
            if len(out) != size or sum(words) & 0xFFFFFFFF != n:
                raise ValueError("length or checksum does not match")
            return bytes(out)
        else:
            raise ValueError(f"unknown command {op!r}")
    raise ValueError("no checksum")


def table(rnd):
    seats = [{"seat": s, "user": f"player-{s}", "chips": 1000 + s * 7 + (rnd if s == rnd else 0)} for s in range(9)]
    return json.dumps({"table": 42, "round": rnd, "pot": rnd * 10, "seats": seats})


async def recv_hub(ws):
    """The next frame, which must be binary, decoded as a HubFrame."""
    raw = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(raw, bytes), f"expected a binary frame, got {raw!r}"
    f = hub_pb2.HubFrame()
    f.ParseFromString(raw)
    return f


async def until(ws, kind):
    while True:
        f = await recv_hub(ws)
        if f.WhichOneof("frame") == kind:
            return f


async def main():
    proto = await websockets.connect(
        URL, subprotocols=["ringhub.v1.proto"], additional_headers={"Authorization": f"Bearer {TOKEN_A}"}
    )
    check("the hub chose ringhub.v1.proto", proto.subprotocol == "ringhub.v1.proto", proto.subprotocol)
    w = await recv_hub(proto)
    check("welcome decodes", w.WhichOneof("frame") == "welcome" and w.welcome.user == "py-a", str(w))

    plain = await websockets.connect(URL, additional_headers={"Authorization": f"Bearer {TOKEN_B}"})
    check("no offer: no subprotocol", plain.subprotocol is None, plain.subprotocol)
    welcome = json.loads(await plain.recv())
    check("no offer: JSON welcome", welcome["type"] == "welcome", str(welcome))

    sub = client_pb2.ClientFrame(id=1, subscribe=client_pb2.Subscribe(channel="chat:py"))
    await proto.send(sub.SerializeToString())
    f = await recv_hub(proto)
    check("subscribed", f.id == 1 and f.subscribed.channel == "chat:py", str(f))
    await plain.send(json.dumps({"type": "subscribe", "channel": "chat:py", "id": 1}))
    check("JSON subscribed", json.loads(await plain.recv())["type"] == "subscribed")

    # JSON publisher -> proto subscriber: data is the JSON text as written.
    text = '{"type":"publish","channel":"chat:py","data":{ "seat" : 3, "bet": 2.50 }}'
    await plain.send(text)
    m = await until(proto, "message")
    check("JSON data reaches proto byte for byte", m.message.data == b'{ "seat" : 3, "bet": 2.50 }', m.message.data)
    check("from is set", m.message.from_user == "py-b", m.message.from_user)

    # Proto publisher -> JSON subscriber.
    pub = client_pb2.ClientFrame(id=2, publish=client_pb2.Publish(channel="chat:py", data=b'["fold", 0.10]'))
    await proto.send(pub.SerializeToString())
    ack = await until(proto, "ack")
    check("ack", ack.id == 2, str(ack))
    while True:
        j = json.loads(await asyncio.wait_for(plain.recv(), 5))
        if j["type"] == "message" and j.get("from") == "py-a":
            break
    check("proto data reaches JSON as the JSON value", j["data"] == ["fold", 0.1], str(j))

    bad = client_pb2.ClientFrame(id=3, publish=client_pb2.Publish(channel="chat:py", data=b"\x00\x01"))
    await proto.send(bad.SerializeToString())
    err = await until(proto, "error")
    check("non-JSON data is bad_request", err.id == 3 and err.error.code == "bad_request", str(err))

    await proto.send(client_pb2.ClientFrame(id=4, ping=client_pb2.Ping()).SerializeToString())
    pong = await until(proto, "pong")
    check("pong", pong.id == 4)

    # Deltas: a whole publication, then Fossil deltas that rebuild each publication's text.
    sub = client_pb2.ClientFrame(id=5, subscribe=client_pb2.Subscribe(channel="game:py", delta="fossil"))
    await proto.send(sub.SerializeToString())
    f = await until(proto, "subscribed")
    check("delta subscribed", f.id == 5, str(f))
    base, flags = b"", []
    for rnd in range(4):
        text = table(rnd)
        await plain.send(f'{{"type":"publish","channel":"game:py","data":{text}}}')
        m = (await until(proto, "message")).message
        flags.append(m.delta if m.HasField("delta") else None)
        try:
            base = fossil_apply(base, m.data) if m.delta else m.data
        except ValueError as e:
            check(f"delta {rnd} applies", False, str(e))
            break
        check(f"publication {rnd} rebuilt byte for byte", base == text.encode(), base)
    check("whole first, then deltas", flags == [False, True, True, True], str(flags))
    bad = client_pb2.ClientFrame(id=6, subscribe=client_pb2.Subscribe(channel="game:py", delta="xdelta"))
    await proto.send(bad.SerializeToString())
    err = await until(proto, "error")
    check("an unknown delta type is bad_request", err.id == 6 and err.error.code == "bad_request", str(err))

    await proto.close()
    await plain.close()


asyncio.run(main())
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
