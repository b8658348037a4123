#!/usr/bin/env python3
"""Regenerates src/protocol/fossil/vectors.json: Fossil deltas made by the format's reference
implementation (Fossil's own delta.c, wrapped by PyPI's python-fossil-delta), which the
hub's encoder must reproduce byte for byte and its decoder apply.

    pip install python-fossil-delta && scripts/fossil-vectors.py
"""
import json
import random
import fossil_delta

rng = random.Random(18)


def table(seat_moves, pot):
    seats = [{"seat": i, "user": f"player-{i}", "chips": 1000 + 37 * i * seat_moves,
              "cards": ["As", "Kd"] if i == seat_moves % 9 else None} for i in range(9)]
    return json.dumps({"table": 42, "pot": pot, "round": seat_moves, "seats": seats},
                      separators=(",", ":")).encode()


def mutate(b, n):
    b = bytearray(b)
    for _ in range(n):
        i = rng.randrange(len(b) + 1)
        op = rng.randrange(3)
        if op == 0 and len(b) > 0:
            del b[i:i + rng.randrange(1, 20)]
        elif op == 1:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20)))
        else:
            b[i:i + 3] = b"xyz"
    return bytes(b)


pairs = [
    (b"", b""),
    (b"", b"hello"),
    (b"short", b"short but longer now"),
    (b"exactly sixteen!", b"exactly sixteen! and then some"),
    (b"0123456789abcdef" * 4, b"0123456789abcdef" * 4),
    (b"0123456789abcdef" * 4, b"0123456789abcdef" * 3 + b"tail"),
    (b"abcdefghij" * 10, b"abcdefghij" * 9 + b"XYZ"),
    (table(1, 100), table(2, 150)),
    (table(2, 150), table(3, 150)),
    (table(3, 150), b'{"table":42,"pot":0}'),
    ("é€ünïcødé ".encode() * 20, "é€ünïcødé ".encode() * 19 + "ß".encode()),
]
base = bytes(rng.randrange(256) for _ in range(700))
for n in (1, 5, 40):
    pairs.append((base, mutate(base, n)))
t = table(5, 400)
pairs.append((t, mutate(t, 3)))

vectors = [{"source": s.hex(), "target": t.hex(), "delta": fossil_delta.create_delta(s, t).hex()}
           for s, t in pairs]
with open("src/protocol/fossil/vectors.json", "w") as f:
    json.dump(vectors, f, indent=0)
    f.write("\n")
print(len(vectors), "vectors")
