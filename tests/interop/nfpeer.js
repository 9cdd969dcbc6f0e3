// Shared by the Node interop scripts: the backend asked for, and the life of
// a netframe example server under test (started on port 0, stopped by
// SIGTERM with exit status 0 required).
'use strict';
const { spawn } = require('child_process');

const backend = { uring: 'uring', epoll: 'epoll' }[process.env.NF_BACKEND] || 'auto';

// Starts `server args` and waits for its first line, "listening on
// HOST:PORT ..."; resolves to { proc, port, exited } (exited: a promise of
// the exit code). fail(msg) is the script's own.
async function startServer(server, args, fail) {
  const proc = spawn(server, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  const line = await new Promise((resolve) => {
    let buf = '';
    proc.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) resolve(buf.split('\n')[0]);
    });
  });
  if (!line.startsWith('listening on ')) fail('server said ' + line);
  console.log(line);
  return { proc, port: Number(line.split(' ')[2].split(':').pop()), exited };
}

// SIGTERM, then exit status 0, or fail.
async function stopServer(srv, fail) {
  srv.proc.kill('SIGTERM');
  const rc = await srv.exited;
  if (rc !== 0) fail('server exit status ' + rc + ' after SIGTERM, expected 0');
}

module.exports = { backend, startServer, stopServer };
