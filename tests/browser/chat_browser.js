// The chat page in a real browser: Debian's chromium, headless, driven by
// playwright-core (npm, installed into tests/browser/node_modules by the
// chat_browser_npm_install ctest fixture).
//
//   node chat_browser.js CHAT_SERVER [--deflate]
//
// Starts chat_server on an ephemeral port, opens its page in two browser
// pages, checks both connect (hello), page A sends a line through the input
// box, both pages show the broadcast, and both receive the stats message
// (the table fills in). Fails, never skips: no chromium means exit 1.
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

const CHROMIUM = process.env.NF_CHROMIUM || "/usr/bin/chromium";
const server = process.argv[2];
const deflate = process.argv.includes("--deflate");
const backend = { uring: "uring", epoll: "epoll" }[process.env.NF_BACKEND] || "auto";

let serverProc = null;
function fail(msg) {
  console.log("FAIL: " + msg);
  if (serverProc) serverProc.kill("SIGKILL");
  process.exit(1);
}
const hardStop = setTimeout(() => fail("took longer than 60 s"), 60000);

if (!server) fail("usage: chat_browser.js CHAT_SERVER [--deflate]");
if (!fs.existsSync(CHROMIUM)) fail(CHROMIUM + " not found: install Debian's chromium (make deps)");
let chromium;
try {
  ({ chromium } = require("playwright-core"));
} catch (e) {
  fail("playwright-core is not installed in tests/browser/node_modules: " + e.message);
}

function startServer() {
  return new Promise((resolve, reject) => {
    const args = ["--port", "0", "--backend", backend, "--stats-ms", "300"];
    if (deflate) args.push("--deflate");
    const p = spawn(server, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.on("error", reject);
    p.on("exit", (code) => reject(new Error("server exited " + code + " before listening: " + out)));
    p.stdout.on("data", (d) => {
      out += d;
      const m = /listening on ([0-9.]+):(\d+)/.exec(out);
      if (m) {
        p.removeAllListeners("exit");
        resolve({ proc: p, url: "http://" + m[1] + ":" + m[2] + "/" });
      }
    });
  });
}

(async () => {
  const { proc, url } = await startServer();
  serverProc = proc;
  console.log("chat_server at " + url);
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "nf-chromium-"));
  let context;
  try {
    // The flags from the machine's notes: no sandbox as root, no GPU, and
    // nothing that reaches outside hosts.
    context = await chromium.launchPersistentContext(userDir, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      args: [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ],
    });
    const a = await context.newPage();
    const b = await context.newPage();
    const errors = [];
    for (const p of [a, b]) {
      p.on("pageerror", (e) => errors.push(e.message));
      p.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    }
    const resp = await a.goto(url, { timeout: 15000 });
    if (resp.status() !== 200) fail("page status " + resp.status());
    if (resp.headers()["content-type"] !== "text/html; charset=utf-8")
      fail("page content-type " + resp.headers()["content-type"]);
    await b.goto(url, { timeout: 15000 });
    // both connected: the hello message sets body[data-id]
    const idOf = async (p) => {
      await p.waitForFunction(() => document.body.dataset.id, null, { timeout: 15000 });
      return p.evaluate(() => document.body.dataset.id);
    };
    const ida = await idOf(a), idb = await idOf(b);
    if (ida === idb) fail("both pages got id " + ida);
    // A types a line and sends it with the form
    const text = "hello from page A <é€😀> " + Date.now();
    await a.fill("#input", text);
    await a.click("#send");
    const want = "#" + ida + ": " + text;
    for (const [name, p] of [["A", a], ["B", b]]) {
      await p.waitForFunction(
        (w) => [...document.querySelectorAll("#log li")].some((li) => li.textContent === w),
        want, { timeout: 15000 }).catch(() => fail("page " + name + " did not show the broadcast"));
    }
    if ((await a.inputValue("#input")) !== "") fail("input box not cleared after sending");
    // the stats message arrived and filled the table, on both pages: one
    // that left the server after the broadcast (same connection, in order)
    // counts the message
    for (const [name, p] of [["A", a], ["B", b]]) {
      const n0 = await p.evaluate(() => Number(document.body.dataset.stats || 0));
      await p.waitForFunction((n) => Number(document.body.dataset.stats) > n, n0, { timeout: 15000 })
        .catch(() => fail("page " + name + " got no stats message"));
      const cells = await p.$$eval("#stats tr", (rows) =>
        Object.fromEntries(rows.map((r) => [r.cells[0].textContent, r.cells[1].textContent])));
      if (cells["connections"] !== "2") fail("page " + name + " shows connections=" + cells["connections"]);
      if (!(Number(cells["messages in"]) >= 1)) fail("page " + name + " shows messages in=" + cells["messages in"]);
      if (cells["policy"] !== "drop-oldest") fail("page " + name + " shows policy=" + cells["policy"]);
    }
    if (errors.length) fail("errors in the pages: " + errors.join("; "));
    console.log("ok: two pages (#" + ida + ", #" + idb + ") saw the broadcast and the stats" +
      (deflate ? " (permessage-deflate)" : ""));
  } finally {
    if (context) await context.close();
    fs.rmSync(userDir, { recursive: true, force: true });
    proc.kill("SIGTERM");
  }
  const code = proc.exitCode !== null ? proc.exitCode : await new Promise((r) => proc.on("exit", (c) => r(c)));
  serverProc = null;
  if (code !== 0) fail("chat_server exited " + code + " after SIGTERM");
  clearTimeout(hardStop);
})().catch((e) => fail(e.stack || String(e)));
