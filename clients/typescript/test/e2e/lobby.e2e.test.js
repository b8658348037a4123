// The example lobby (example/), as people would use it: three players in headless
// Chromium on a hub started with the example's own configuration. Checks what alice's
// page shows (the chat, history included, and who is there), and takes its screenshot
// (to test-output/lobby.png, or SDK_SCREENSHOT: the README's is docs/lobby.png).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startHub, token } from "../support/hub.js";
import { launch, serveFiles, waitInPage } from "../support/browser.js";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const SHOT = resolve(ROOT, process.env.SDK_SCREENSHOT ?? "test-output/lobby.png");

let files, chromium;
before(async () => {
  files = await serveFiles();
  chromium = await launch();
});
after(async () => {
  await chromium?.close();
  await files?.close();
});

/** A player's page; the token has no claims, as `ringhub token --user U` makes it (lobby is public). */
async function player(hub, user) {
  const page = await chromium.browser.newPage();
  await page.setViewport({ width: 960, height: 540 });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const query = new URLSearchParams({ hub: hub.url, token: token({ sub: user, channels: [], publish: [] }) });
  await page.goto(`${files.origin}/example/?${query}`);
  await waitInPage(page, (u) => document.querySelector(`#players li[data-user="${u}"]`) !== null, user);
  return { page, errors };
}

async function say(page, text) {
  await page.bringToFront();
  await page.type("#text", text);
  await page.click("#say button");
  await waitInPage(page, () => document.getElementById("text").value === "");
}

const lines = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll("#messages li:not(.system)")].map((li) => `${li.querySelector(".from").textContent}: ${li.lastChild.textContent}`),
  );

test("the example lobby: chat with history, presence with join and away", async () => {
  const toml = readFileSync(resolve(ROOT, "example/ringhub.toml"), "utf8");
  const hub = await startHub({ toml, env: { RINGHUB_INSTANCE_ID: "hub-1" } });
  try {
    const bob = await player(hub, "bob");
    const carol = await player(hub, "carol");
    await say(bob.page, "Anyone up for a game of hold'em?");
    await say(carol.page, "Sure, table 42 has two seats.");
    // Alice comes later: the history shows her what was said.
    const alice = await player(hub, "alice");
    await waitInPage(alice.page, () => document.querySelectorAll("#messages li:not(.system)").length === 2);
    await say(alice.page, "Deal me in!");
    await say(bob.page, "Great, starting in a minute.");
    await carol.page.bringToFront();
    await carol.page.click("#away");
    await alice.page.bringToFront();
    await waitInPage(alice.page, () => document.querySelector('#players li[data-user="carol"]')?.className === "away");
    await waitInPage(alice.page, () => document.querySelectorAll("#messages li:not(.system)").length === 4);
    assert.deepEqual(await lines(alice.page), [
      "bob: Anyone up for a game of hold'em?",
      "carol: Sure, table 42 has two seats.",
      "alice: Deal me in!",
      "bob: Great, starting in a minute.",
    ]);
    const players = await alice.page.evaluate(() => [...document.querySelectorAll("#players li")].map((li) => li.textContent));
    assert.deepEqual(players, ["alice", "bob", "carol (away)"]);
    assert.equal(await alice.page.$eval("#state", (e) => e.textContent), "connected");
    mkdirSync(dirname(SHOT), { recursive: true });
    await alice.page.screenshot({ path: SHOT });
    assert.ok(statSync(SHOT).size > 10_000, `a screenshot in ${SHOT}`);
    for (const p of [alice, bob, carol]) assert.deepEqual(p.errors, []);
  } finally {
    await hub.stop();
  }
});
