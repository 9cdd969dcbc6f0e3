// Interop with Node's ws@8 (npm, installed into tests/interop/node_modules
// by the ws_interop_npm_install ctest fixture), both ways.
//
//   node node_interop.js MODE WS_ECHO_SERVER WS_CLIENT
//
// MODE: node_client[_deflate] (ws client -> ws_echo_server),
//       node_server[_deflate] (ws_client -> ws echo server),
//       node_client_hybi8 (ws client with protocolVersion 8 -> ws_echo_server
//       --legacy), node_server_hybi8 (ws_client --version 8 -> ws server,
//       which accepts versions 8 and 13).
// Loopback only, bounded by a global timeout. Exit 0 on success.
'use strict';
const path = require('path');
const { spawn } = require('child_process');
const WebSocket = require(path.join(__dirname, 'node_modules', 'ws'));
const { backend, startServer, stopServer } = require('./nfpeer');

const [mode, server, client] = process.argv.slice(2);
const deflate = mode.endsWith('_deflate');
const hybi8 = mode.endsWith('_hybi8');

function fail(msg) {
  console.log('FAIL: ' + msg);
  process.exit(1);
}
setTimeout(() => fail('timeout'), 50000).unref();

function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    const onClose = () => reject(new Error('closed'));
    ws.once('message', (data, isBinary) => {
      ws.removeListener('close', onClose);
      resolve({ data, isBinary });
    });
    ws.once('close', onClose);
  });
}

async function clientSide() {
  const args = ['--port', '0', '--backend', backend]
    .concat(deflate ? ['--deflate'] : [])
    .concat(hybi8 ? ['--legacy'] : []);
  const srv = await startServer(server, args, fail);
  const port = srv.port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/node`, {
    perMessageDeflate: deflate ? { threshold: 0 } : false,
    maxPayload: 0,
    ...(hybi8 ? { protocolVersion: 8, origin: 'http://origin.test' } : {}),
  });
  ws.on('error', (e) => fail('client error ' + e.message));
  await new Promise((resolve) => ws.once('open', resolve));
  const ext = ws.extensions;
  if (deflate !== ext.includes('permessage-deflate')) fail('extensions: ' + ext);
  for (const n of [0, 1, 125, 126, 127, 65535, 65536, 300000]) {
    const text = 'é'.repeat(n >> 1) + 'a'.repeat(n & 1);
    ws.send(text);
    let m = await nextMessage(ws);
    if (m.isBinary || m.data.toString() !== text) fail(`text echo of ${n} differs`);
    const bin = Buffer.alloc(n);
    for (let i = 0; i < n; i++) bin[i] = (i * 31 + n) & 0xff;
    ws.send(bin);
    m = await nextMessage(ws);
    if (!m.isBinary || !Buffer.from(m.data).equals(bin)) fail(`binary echo of ${n} differs`);
  }
  // a fragmented message: fin false, then the rest
  ws.send('frag-one ', { fin: false });
  ws.send('frag-two', { fin: true });
  const m = await nextMessage(ws);
  if (m.data.toString() !== 'frag-one frag-two') fail('fragmented echo: ' + m.data);
  await new Promise((resolve) => {
    ws.once('pong', resolve);
    ws.ping('p');
  });
  const code = await new Promise((resolve) => {
    ws.once('close', (c) => resolve(c));
    ws.close(1000, 'bye');
  });
  if (code !== 1000) fail('close code ' + code);
  await stopServer(srv, fail);
}

async function serverSide() {
  const wss = new WebSocket.Server({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: deflate ? { threshold: 0 } : false,
    maxPayload: 0,
  });
  const seen = {};
  wss.on('connection', (ws, req) => {
    seen.url = req.url;
    seen.version = req.headers['sec-websocket-version'];
    seen.origin = req.headers['sec-websocket-origin'];
    seen.plainOrigin = req.headers.origin;
    seen.ext = ws.extensions;
    ws.on('error', () => {}); // a protocol error from the peer must not kill the process
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  const port = wss.address().port;
  const msgs = ['hello', 'wörld 😀', 'x'.repeat(70000), 'y'.repeat(126)];
  const args = ['--backend', backend, '--wait', '10000']
    .concat(deflate ? ['--deflate'] : [])
    .concat(hybi8 ? ['--version', '8', '--origin', 'http://origin.test'] : []);
  const proc = spawn(client, args.concat([`ws://127.0.0.1:${port}/room?x=1`], msgs),
    { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  const rc = await new Promise((resolve) => proc.on('exit', (c) => resolve(c)));
  if (rc !== 0) fail('ws_client exit ' + rc);
  if (out !== msgs.join('\n') + '\n') fail('ws_client printed ' + out.slice(0, 200));
  if (seen.url !== '/room?x=1') fail('url ' + seen.url);
  if (deflate !== (seen.ext || '').includes('permessage-deflate')) fail('extensions ' + seen.ext);
  if (hybi8) {
    if (seen.version !== '8') fail('Sec-WebSocket-Version ' + seen.version);
    if (seen.origin !== 'http://origin.test' || seen.plainOrigin !== undefined)
      fail(`origin headers: Sec-WebSocket-Origin ${seen.origin}, Origin ${seen.plainOrigin}`);
  }
  await new Promise((resolve) => wss.close(resolve));
}

(mode.startsWith('node_client') ? clientSide() : serverSide())
  .then(() => {
    console.log('ok ' + mode);
    process.exit(0);
  })
  .catch((e) => fail(e.stack || String(e)));
