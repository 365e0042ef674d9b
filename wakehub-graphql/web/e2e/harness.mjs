// The end-to-end harness every e2e file shares: a real `wakehub serve --demo`, a TCP relay
// in front of it that a test can cut and restore (as a flaky Wi-Fi would), Debian's
// Chromium driven by playwright-core, and a record of every request a page makes that is
// not for the server's own origin.
//
// WAKEHUB_BIN names the binary (default: target/debug/wakehub), CHROMIUM the browser
// (default: /usr/bin/chromium), WAKEHUB_SCREENSHOTS where screenshots go (default:
// target/e2e-screenshots).

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '../../..');
export const bin = process.env.WAKEHUB_BIN ?? resolve(repo, 'target/debug/wakehub');
export const shots = process.env.WAKEHUB_SCREENSHOTS ?? resolve(repo, 'target/e2e-screenshots');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** The server, the relay in front of it, the browser, and what every page requested. */
export const lab = { server: null, api: '', origin: '', admin: null, viewer: null, relay: null, browser: null, ready: null };
export const foreign = [];

/** Starts `wakehub serve --demo` and reads its URL and the two demo logins. */
function startServer(args) {
  return new Promise((ok, fail) => {
    const child = spawn(bin, ['serve', '--demo', '--listen', '127.0.0.1:0', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: 'warn' },
    });
    let out = '';
    const timer = setTimeout(() => fail(new Error(`the server did not start: ${out}`)), 30_000);
    child.on('exit', (code) => fail(new Error(`the server exited (${code}): ${out}`)));
    child.stderr.on('data', () => {});
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const url = out.match(/listening on (http:\/\/[^/]+)\//)?.[1];
      const admin = out.match(/demo login: (\S+) \/ (\S+)/);
      const viewer = out.match(/demo viewer: (\S+) \/ (\S+)/);
      if (url && admin && viewer) {
        clearTimeout(timer);
        ok({ child, url, admin: { name: admin[1], password: admin[2] }, viewer: { name: viewer[1], password: viewer[2] } });
      }
    });
  });
}

/** A TCP relay to `target`; `cut()` drops every connection and refuses new ones until `restore()`. */
function startRelay(target) {
  const { hostname, port } = new URL(target);
  const sockets = new Set();
  let open = true;
  const server = createServer((client) => {
    if (!open) return client.destroy();
    const upstream = connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  return new Promise((ok) =>
    server.listen(0, '127.0.0.1', () =>
      ok({
        origin: `http://127.0.0.1:${server.address().port}`,
        cut() {
          open = false;
          for (const s of sockets) s.destroy();
          sockets.clear();
        },
        restore() {
          open = true;
        },
        close: () => new Promise((done) => server.close(done)),
      }),
    ),
  );
}

/** A GraphQL call straight to the server (not through the relay), as the admin. */
export async function gql(query, variables = {}) {
  await lab.ready;
  const login = await fetch(`${lab.api}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(lab.admin),
  }).then((r) => r.json());
  const body = await fetch(`${lab.api}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${login.token}` },
    body: JSON.stringify({ query, variables }),
  }).then((r) => r.json());
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}

/** A new page (desktop unless `phone`), with every request checked against the origin. */
export async function newPage({ phone = false } = {}) {
  const context = await lab.browser.newContext(
    phone
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { viewport: { width: 1280, height: 860 } },
  );
  const page = await context.newPage();
  const origin = new URL(lab.origin);
  page.on('request', (request) => {
    const url = new URL(request.url());
    const local = url.host === origin.host && ['http:', 'ws:'].includes(url.protocol);
    if (!local && url.protocol !== 'data:') foreign.push(request.url());
  });
  page.on('websocket', (ws) => {
    if (new URL(ws.url()).host !== origin.host) foreign.push(ws.url());
  });
  return page;
}

export async function logIn(page, who) {
  await page.goto(`${lab.origin}/`);
  await page.getByLabel(/user name|name/i).first().fill(who.name);
  await page.getByLabel(/password/i).fill(who.password);
  await page.getByRole('button', { name: /log in|sign in/i }).click();
  await page.getByText(who.name, { exact: true }).first().waitFor();
}

/** Waits until a tile (or any element carrying the node) shows `status`. */
export async function waitStatus(page, node, status, timeout = 30_000) {
  await page.locator(`[data-node="${node}"] [data-status="${status}"]`).first().waitFor({ timeout });
}

/** Debian's Chromium, headless, with nothing that reaches beyond this machine. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
}

/**
 * Starts the server (with `args` after `serve --demo`), the relay and the browser for the tests of the calling file.
 * Node 20 runs a file's top-level `before` hooks concurrently: another `before` of the same
 * file must `await lab.ready` (as `gql` does) before it uses the lab.
 */
export function useLab({ args = [] } = {}) {
  let started;
  lab.ready = new Promise((ok, fail) => (started = { ok, fail }));
  lab.ready.catch(() => {});
  before(async () => {
    try {
      mkdirSync(shots, { recursive: true });
      const s = await startServer(args);
      Object.assign(lab, { server: s.child, api: s.url, admin: s.admin, viewer: s.viewer });
      lab.relay = await startRelay(s.url);
      lab.origin = lab.relay.origin;
      lab.browser = await launchBrowser();
      started.ok();
    } catch (error) {
      started.fail(error);
      throw error;
    }
  });

  after(async () => {
    await lab.browser?.close();
    await lab.relay?.close();
    lab.server?.kill('SIGTERM');
  });
}
