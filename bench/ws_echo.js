// Node's `ws` (npm ws@8) echo server, a reference peer of bench/ws.sh.
//
//   node bench/ws_echo.js [--host 127.0.0.1] --port P [--deflate]
//
// Echoes every message with its type (text / binary). --deflate enables
// permessage-deflate with ws' defaults except `threshold: 32` (ws' default
// is 1024: messages shorter go uncompressed), the same threshold as
// netframe's default, so the 64-byte runs compress on both. Prints
// "listening on HOST:PORT backend=node-ws"; exits 0 on SIGINT/SIGTERM.
"use strict";
const { WebSocketServer } = require("ws");
const a = process.argv.slice(2);
const arg = (k, d) => (a.indexOf(k) >= 0 ? a[a.indexOf(k) + 1] : d);
const host = arg("--host", "127.0.0.1");
const port = Number(arg("--port", "0"));
const deflate = a.includes("--deflate");
const wss = new WebSocketServer({
  host, port, maxPayload: 64 << 20,
  perMessageDeflate: deflate ? { threshold: 32 } : false,
});
wss.on("connection", (ws) => {
  ws.on("error", () => {});
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on("listening", () => console.log(`listening on ${host}:${wss.address().port} backend=node-ws`));
const stop = () => { for (const c of wss.clients) c.terminate(); wss.close(() => process.exit(0)); };
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
