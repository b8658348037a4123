// Every frame docs/protocol.md shows as JSON (in code blocks, or inline when it parses) is
// among test/types/examples.ts's, which tsc checks against the SDK's types: the types
// cannot drift from the document without a test failing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const read = (path) => readFileSync(fileURLToPath(new URL(path, import.meta.url)), "utf8");

function frames(text, candidates) {
  const out = [];
  for (const candidate of candidates(text)) {
    let value;
    try {
      value = JSON.parse(candidate);
    } catch {
      continue;
    }
    if (value && typeof value === "object" && typeof value.type === "string") out.push(value);
  }
  return out;
}

test("every frame in docs/protocol.md is typed in test/types/examples.ts", () => {
  const doc = read("../../../../docs/protocol.md");
  const documented = frames(doc, (text) => {
    const lines = [];
    let fenced = false;
    for (const line of text.split("\n")) {
      if (line.startsWith("```")) fenced = !fenced;
      else if (fenced || line.startsWith("    ")) lines.push(line.trim());
    }
    return [...lines, ...[...text.matchAll(/`(\{[^`]*\})`/g)].map((m) => m[1])];
  });
  assert.ok(documented.length >= 10, `the document's frames were found (${documented.length})`);
  const typed = frames(read("../types/examples.ts"), (text) => text.split("\n").map((l) => l.trim().replace(/,$/, "")));
  for (const frame of documented) {
    assert.ok(
      typed.some((t) => JSON.stringify(t) === JSON.stringify(frame)),
      `docs/protocol.md shows ${JSON.stringify(frame)}: add it to test/types/examples.ts (and its type to src/protocol.ts)`,
    );
  }
});
