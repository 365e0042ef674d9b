// The server bench's event delivery, measured from outside the server: N subscribers in this
// process (npm `graphql-ws` over Node's own WebSocket) follow the journal's events on a
// `wakehub serve` process while a cascade runs; then the baseline: a minimal broadcast
// server (npm `ws`, a process of its own) sends the same frames, spaced as WakeHub's events
// were, to N plain WebSockets of this process. A latency is the time from an event's `at`
// (its creation, before its journal write; for the baseline, the moment it sends the
// frame) to its arrival parsed in a client (1 ms clock resolution).
//
// Usage: node --experimental-websocket subscribers.mjs URL TOKEN N TARGET [CPU]
//   (WAKEHUB_BENCH_QUERY replaces the subscription's document, the dashboard's fields.)
//   URL: the server's /graphql; TARGET: the node the cascade starts; CPU: where the baseline
//   server is pinned (`taskset`), the CPU the WakeHub server was given.
// Prints one JSON line: {"events", "wakehub": {p50, p99, complete}, "baseline": {…}}.
//
// `node subscribers.mjs --broadcast` is the baseline server: it prints its port, then takes
// one control message (`{"frames": [[offset_ms, text]…]}`) on any connection and sends each
// frame to every other connection at its offset, stamping the frame's `at` with the moment
// it sends it.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

const web = resolve(dirname(fileURLToPath(import.meta.url)), '../web/');
const need = createRequire(`${web}/`);
const now = () => performance.timeOrigin + performance.now();

const QUERY = process.env.WAKEHUB_BENCH_QUERY ?? `subscription { events { id at kind cascade node payload {
  __typename
  ... on StatusChange { name kind state }
  ... on CascadeProgress { step totalSteps current { name action state stepStatus } }
  ... on CascadeComplete { action }
} } }`;

if (process.argv[2] === '--broadcast') {
  const { WebSocketServer } = need('ws');
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  server.on('listening', () => console.log(server.address().port));
  server.on('connection', (socket) =>
    socket.on('message', (data) => {
      const { frames } = JSON.parse(data);
      const began = now();
      for (const [offset, text] of frames) {
        setTimeout(() => {
          const stamped = text.replace(/"at":"[^"]*"/, `"at":"${new Date().toISOString()}"`);
          for (const client of server.clients) if (client !== socket) client.send(stamped);
        }, Math.max(0, began + offset - now()));
      }
    }),
  );
} else {
  const [url, token, n, target, cpu] = process.argv.slice(2);
  const result = { events: 0, wakehub: await wakehub(url, token, Number(n), target) };
  result.events = result.wakehub.frames.length;
  result.baseline = await baseline(result.wakehub.frames, Number(n), cpu);
  delete result.wakehub.frames;
  console.log(JSON.stringify(result));
  process.exit(0);
}

function percentiles(latencies, complete) {
  latencies.sort((a, b) => a - b);
  const at = (p) => latencies[Math.round((latencies.length - 1) * p)];
  return { p50: at(0.5), p99: at(0.99), complete };
}

/** Opens `n` things with `open(i)` 200 at a time (the server's per-address pacing), resolves when all are ready. */
async function openAll(n, open) {
  const ready = [];
  for (let i = 0; i < n; i++) {
    ready.push(open(i));
    if (i % 200 === 199) await Promise.all(ready);
  }
  return Promise.all(ready);
}

async function wakehub(url, token, n, target) {
  const { createClient } = need('graphql-ws');
  const latencies = [];
  const frames = [];
  let complete = 0;
  let done;
  const finished = new Promise((ok) => (done = ok));
  const clients = await openAll(n, (i) => new Promise((connected, failed) => {
    const client = createClient({
      url: url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { token },
      lazy: false,
      retryAttempts: 0,
      on: { connected: () => connected(client), error: failed },
    });
    client.subscribe({ query: QUERY }, {
      next: ({ data }) => {
        const arrived = now();
        const e = data.events;
        latencies.push(arrived - Date.parse(e.at));
        if (i === 0) frames.push([Date.parse(e.at), JSON.stringify({ id: '1', type: 'next', payload: { data } })]);
        if (e.kind === 'cascade-complete' && ++complete === n) done();
      },
      error: (e) => console.error('subscription error', JSON.stringify(e)),
      complete: () => {},
    });
  }));
  // No acknowledgement of a subscribe in the protocol: give the last ones time to reach the bus.
  await new Promise((r) => setTimeout(r, 1000));
  const started = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: `mutation { startNode(id: "${target}") { id } }` }),
  }).then((r) => r.json());
  if (started.errors) throw new Error(JSON.stringify(started.errors));
  await Promise.race([finished, new Promise((r) => setTimeout(r, 60_000))]);
  for (const c of clients) c.dispose();
  const first = frames[0]?.[0] ?? 0;
  return { ...percentiles(latencies, complete), frames: frames.map(([at, text]) => [at - first, text]) };
}

async function baseline(frames, n, cpu) {
  const pin = cpu === undefined ? [] : ['taskset', '-c', cpu];
  const [command, ...args] = [...pin, process.execPath, fileURLToPath(import.meta.url), '--broadcast'];
  const server = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((ok) => server.stdout.once('data', (d) => ok(Number(String(d).trim()))));
  const latencies = [];
  let complete = 0;
  let done;
  const finished = new Promise((ok) => (done = ok));
  const last = frames.length;
  const sockets = await openAll(n, () => new Promise((open, failed) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    let seen = 0;
    ws.onopen = () => open(ws);
    ws.onerror = failed;
    ws.onmessage = (m) => {
      const arrived = now();
      const { payload } = JSON.parse(m.data);
      latencies.push(arrived - Date.parse(payload.data.events.at));
      if (++seen === last && ++complete === n) done();
    };
  }));
  const control = new WebSocket(`ws://127.0.0.1:${port}`);
  await new Promise((ok) => (control.onopen = ok));
  await new Promise((r) => setTimeout(r, 1000));
  control.send(JSON.stringify({ frames }));
  await Promise.race([finished, new Promise((r) => setTimeout(r, 60_000))]);
  for (const s of [...sockets, control]) s.close();
  server.kill();
  return percentiles(latencies, complete);
}
