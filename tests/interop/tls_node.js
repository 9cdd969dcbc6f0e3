// wss:// interop with Node's ws@8 over Node's TLS (installed by the
// ws_interop_npm_install ctest fixture), both ways.
//
//   node tls_node.js MODE MKCERTS WS_ECHO_SERVER WS_CLIENT
//
// MODE: wss_node_client (ws client, verifying against the test CA ->
//       ws_echo_server --tls-cert), wss_node_server (ws_client --ca ->
//       a ws server on https.createServer). Certificates come from MKCERTS.
'use strict';
const fs = require('fs');
const https = require('https');
const path = require('path');
const { spawn, execFileSync } = require('child_process');
const WebSocket = require(path.join(__dirname, 'node_modules', 'ws'));
const { backend, startServer, stopServer } = require('./nfpeer');

const [mode, mkcerts, server, client] = process.argv.slice(2);
const dir = execFileSync(mkcerts, { encoding: 'utf8' }).trim();
const cert = (f) => path.join(dir, f);

function done(code, msg) {
  if (msg) console.log(msg);
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}
const fail = (msg) => done(1, 'FAIL: ' + msg);
setTimeout(() => fail('timeout'), 50000).unref();

async function nodeClient() {
  const args = ['--port', '0', '--backend', backend, '--tls-cert', cert('server.pem'), '--tls-key', cert('server.key')];
  const srv = await startServer(server, args, fail);
  const port = srv.port;
  const ws = new WebSocket(`wss://localhost:${port}/node`, { ca: fs.readFileSync(cert('ca.pem')), maxPayload: 0 });
  ws.on('error', (e) => fail('client error ' + e.message));
  await new Promise((resolve) => ws.once('open', resolve));
  for (const n of [1, 126, 65536, 300000]) {
    const text = 'x'.repeat(n);
    ws.send(text);
    const m = await new Promise((resolve) => ws.once('message', (d) => resolve(d.toString())));
    if (m !== text) fail(`echo of ${n} bytes differs`);
  }
  console.log('node wss client: echo ok over ' + ws._socket.getProtocol());
  ws.close(1000);
  await new Promise((resolve) => ws.once('close', resolve));
  await stopServer(srv, fail);
  done(0, 'ok');
}

async function nodeServer() {
  const hs = https.createServer({ cert: fs.readFileSync(cert('server.pem')), key: fs.readFileSync(cert('server.key')) });
  const wss = new WebSocket.Server({ server: hs });
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary }));
  });
  await new Promise((resolve) => hs.listen(0, '127.0.0.1', resolve));
  const port = hs.address().port;
  const run = (url, extra) =>
    new Promise((resolve) => {
      const p = spawn(client, ['--backend', backend].concat(extra, [url, 'hello', 'over wss']), {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('exit', (code) => resolve({ code, out, err }));
    });
  let r = await run(`wss://localhost:${port}/x`, ['--ca', cert('ca.pem')]);
  if (r.code !== 0 || r.out !== 'hello\nover wss\n') fail(`ws_client: ${r.code} ${r.out} ${r.err}`);
  console.log('ws_client wss -> node: echo ok');
  // without the CA the server is not trusted: a clear refusal
  r = await run(`wss://localhost:${port}/x`, []);
  if (r.code === 0 || !r.err.includes('certificate verify failed')) fail(`expected a refusal: ${r.code} ${r.err}`);
  console.log('ws_client without the CA: ' + r.err.trim().split('\n').pop());
  hs.close();
  wss.close();
  done(0, 'ok');
}

(mode === 'wss_node_client' ? nodeClient : nodeServer)().catch((e) => fail(e.stack));
