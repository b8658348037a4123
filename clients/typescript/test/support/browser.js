// Headless Chromium (Debian's, through puppeteer-core; nothing downloads a browser), and a
// static server for the package's built files, the test page and the example page.

import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".map": "application/json" };

/** Serves clients/typescript/ (dist/, example/, test/e2e/) on a free loopback port. */
export async function serveFiles() {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    let file = join(ROOT, path);
    if (!file.startsWith(ROOT)) return res.writeHead(403).end();
    try {
      if (statSync(file).isDirectory()) file = join(file, "index.html");
      const body = readFileSync(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Chromium, headless, with a fresh profile; `close()` removes the profile too. */
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), "ringhub-sdk-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Generous bounds for a loaded machine (2 cores shared with builds); not speeds.
    timeout: 120_000,
    protocolTimeout: 120_000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * A page with the SDK loaded as `window.RingHub` (test/support/page.html), and page errors
 * collected: a test fails on any.
 */
export async function sdkPage(browser, origin) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${origin}/test/support/page.html`);
  await page.waitForFunction(() => window.RingHub !== undefined);
  return { page, errors };
}

/** Waits, polling the page, until `fn` is true there; says what the page held otherwise. */
export async function waitInPage(page, fn, arg, timeout = 60_000) {
  try {
    await page.waitForFunction(fn, { timeout, polling: 20 }, arg);
  } catch (e) {
    const log = await page.evaluate(() => JSON.stringify(window.log ?? null).slice(0, 4000));
    throw new Error(`${e.message}\npage log: ${log}`);
  }
}
