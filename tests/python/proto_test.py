"""The binary protocol from a client ringhub did not write: Python `websockets` with
`protobuf` classes generated from proto/ by grpcio-tools' protoc, against a running hub.

Usage: proto_test.py ws://HOST:PORT/ws TOKEN_A TOKEN_B (run by scripts/proto-test.sh,
which generates the classes into a directory on PYTHONPATH). Tokens may publish on and
subscribe to `chat:*`.
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
    await proto.close()
    await plain.close()


asyncio.run(main())
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
