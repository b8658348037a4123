"""A client ringhub did not write, for tests/deflate.rs: Python `websockets`, which offers
permessage-deflate by default. It connects, subscribes, says "ready", then prints what it
received (the publication the test makes, ~1 KB) and publishes a message of its own, which
`websockets` sends compressed. Every line it prints is one JSON object.

    python3 deflate_client.py ws://HOST:PORT/ws?token=T CHANNEL
"""

import asyncio
import json
import sys

import websockets


def say(**fields):
    print(json.dumps(fields), flush=True)


async def main(url, channel):
    async with websockets.connect(url, max_size=1 << 20) as ws:
        extensions = [type(e).__name__ for e in ws.protocol.extensions]
        say(event="open", extensions=extensions,
            header=ws.response.headers.get("Sec-WebSocket-Extensions"))
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome", welcome
        await ws.send(json.dumps({"type": "subscribe", "channel": channel, "id": 1}))
        while json.loads(await ws.recv()).get("id") != 1:
            pass
        say(event="ready")
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("type") == "message":
                say(event="message", data=frame["data"])
                break
        seats = [{"seat": i, "player": f"py-{i}", "stack": 1000 + i, "status": "active"}
                 for i in range(16)]
        await ws.send(json.dumps({"type": "publish", "channel": channel, "id": 2,
                                  "data": {"from_python": True, "seats": seats}}))
        while True:
            reply = json.loads(await ws.recv())
            if reply.get("id") == 2:
                say(event="ack", reply=reply)
                break


asyncio.run(main(sys.argv[1], sys.argv[2]))
