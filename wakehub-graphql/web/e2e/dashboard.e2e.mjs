// End-to-end: the dashboard in Debian's Chromium (driven by playwright-core) against a real
// `wakehub serve --demo`. The browser reaches the server through a TCP relay this script
// owns, so a test can cut the connection (every socket, and new ones refused) and restore
// it, as a flaky Wi-Fi would.
//
// Run by scripts/test.sh: `node --test e2e/dashboard.e2e.mjs` with WAKEHUB_BIN naming the built binary.
// Screenshots go to WAKEHUB_SCREENSHOTS (default: ../../target/e2e-screenshots).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');
const bin = process.env.WAKEHUB_BIN ?? resolve(repo, 'target/debug/wakehub');
const shots = process.env.WAKEHUB_SCREENSHOTS ?? resolve(repo, 'target/e2e-screenshots');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** The server, the relay in front of it, the browser, and what every page requested. */
const lab = { server: null, api: '', origin: '', admin: null, viewer: null, relay: null, browser: null };
const foreign = [];

/** Starts `wakehub serve --demo` and reads its URL and the two demo logins. */
function startServer() {
  return new Promise((ok, fail) => {
    const child = spawn(bin, ['serve', '--demo', '--listen', '127.0.0.1:0'], {
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
async function gql(query, variables = {}) {
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
async function newPage({ phone = false } = {}) {
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

async function logIn(page, who) {
  await page.goto(`${lab.origin}/`);
  await page.getByLabel(/user name|name/i).first().fill(who.name);
  await page.getByLabel(/password/i).fill(who.password);
  await page.getByRole('button', { name: /log in|sign in/i }).click();
  await page.getByText(who.name, { exact: true }).first().waitFor();
}

/** Waits until a tile (or any element carrying the node) shows `status`. */
async function waitStatus(page, node, status, timeout = 30_000) {
  await page.locator(`[data-node="${node}"] [data-status="${status}"]`).first().waitFor({ timeout });
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  const s = await startServer();
  Object.assign(lab, { server: s.child, api: s.url, admin: s.admin, viewer: s.viewer });
  lab.relay = await startRelay(s.url);
  lab.origin = lab.relay.origin;
  lab.browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await lab.browser?.close();
  await lab.relay?.close();
  lab.server?.kill('SIGTERM');
});

test('an admin logs in and sees their name, role and the pinned tiles grouped by tag', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.getByText('admin', { exact: false }).first().waitFor();
  for (const group of ['media', 'docs', 'home', 'infra']) {
    await page.getByRole('heading', { name: group }).first().waitFor();
  }
  // Never "on" before a first observation: every tile shows an observed state.
  await page.locator('[data-node="lxc-jellyfin"] [data-status]').first().waitFor();
  await page.screenshot({ path: resolve(shots, 'dashboard-desktop.png'), fullPage: true });
  await page.context().close();
});

test('starting lxc-jellyfin shows the plan, then the progress until it is on', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.getByRole('button', { name: 'Start lxc-jellyfin' }).click();
  const dialog = page.getByRole('dialog');
  // The plan first: what will start, before anything does.
  await dialog.getByText('machine2').first().waitFor();
  await dialog.getByText('nas').first().waitFor();
  await dialog.getByRole('button', { name: /^(confirm|start)/i }).click();
  // While it runs, the tile says where it is (step k of n) …
  await page.locator('[data-node="lxc-jellyfin"]').getByText(/\d+\s*\/\s*\d+|step/i).first().waitFor({ timeout: 15_000 });
  // … and it ends on.
  await waitStatus(page, 'lxc-jellyfin', 'ON');
  await page.context().close();
});

test('stopping machine2 proposes the NAS shutdown, and confirming it stops the NAS', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/node/machine2`);
  await page.getByRole('button', { name: 'Stop machine2' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('lxc-jellyfin').first().waitFor();
  await dialog.getByRole('button', { name: /^(confirm|stop)/i }).click();
  // The proposal is announced, then confirmed from the inbox.
  await page.getByRole('status').getByText(/nas/).first().waitFor({ timeout: 30_000 });
  await page.goto(`${lab.origin}/#/proposals`);
  await page.getByRole('button', { name: 'Confirm shutdown of nas' }).click();
  await page.goto(`${lab.origin}/#/`);
  await waitStatus(page, 'nas', 'OFF');
  await page.context().close();
});

test('a discovered guest is adopted from a form the platform pre-filled', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/discovery`);
  // Discovery at start-up found the demo's guests; the host says how many wait.
  await page.getByText(/1 to configure/).first().waitFor({ timeout: 15_000 });
  await page.getByRole('button', { name: 'Adopt vm-nextcloud' }).click();
  const form = page.getByRole('dialog');
  assert.equal(await form.getByLabel(/^name/i).inputValue(), 'vm-nextcloud');
  await form.getByRole('button', { name: /adopt|save/i }).click();
  const d = await gql('{ node(id: "vm-nextcloud") { state parent { name } } }');
  for (let i = 0; i < 50 && d.node.state !== 'CONFIGURED'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    Object.assign(d, await gql('{ node(id: "vm-nextcloud") { state parent { name } } }'));
  }
  assert.deepEqual(d.node, { state: 'CONFIGURED', parent: { name: 'machine1' } });
  await page.context().close();
});

test('a viewer is offered no power button', async () => {
  const page = await newPage({ phone: true });
  await logIn(page, lab.viewer);
  await page.locator('[data-node="lxc-jellyfin"]').first().waitFor();
  assert.equal(await page.getByRole('button', { name: /^(Start|Stop) / }).count(), 0);
  await page.screenshot({ path: resolve(shots, 'dashboard-phone.png'), fullPage: true });
  await page.goto(`${lab.origin}/#/node/lxc-jellyfin`);
  await page.getByRole('heading', { name: 'lxc-jellyfin' }).first().waitFor();
  assert.equal(await page.getByRole('button', { name: /^(Start|Stop|Pin|Unpin|Delete) / }).count(), 0);
  await page.context().close();
});

test('the connection drops and comes back without losing an event', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/journal`);
  await page.locator('[data-connection="connected"]').waitFor();
  const { events } = await gql('{ events(newestFirst: true, first: 1) { edges { node { id } } } }');
  const cutoff = Number(events.edges[0].node.id.split(':')[1]);

  lab.relay.cut();
  await page.locator('[data-connection]:not([data-connection="connected"])').waitFor({ timeout: 15_000 });
  // While the page is away, a cascade runs to its end.
  const { startNode } = await gql('mutation { startNode(id: "vm-homeassistant") { id } }');
  for (;;) {
    const { cascade } = await gql('query($id: ID!) { cascade(id: $id) { status } }', { id: startNode.id });
    if (!['PENDING', 'IN_PROGRESS'].includes(cascade.status)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  lab.relay.restore();
  await page.locator('[data-connection="connected"]').waitFor({ timeout: 30_000 });

  // Every event journaled since the cut is on the page, once.
  const missed = await gql('query($a: ID!) { events(after: $a, first: 500) { edges { node { id } } } }', {
    a: `event:${cutoff}`,
  });
  const ids = missed.events.edges.map((e) => e.node.id);
  assert.ok(ids.length > 3, `events happened during the outage: ${ids}`);
  for (const id of ids) {
    await page.locator(`[data-event-id="${id}"]`).first().waitFor({ timeout: 10_000 });
    assert.equal(await page.locator(`[data-event-id="${id}"]`).count(), 1, `${id} is shown once`);
  }
  await waitStatus(page, 'vm-homeassistant', 'ON').catch(() => {});
  await page.context().close();
});

test('the pages pass an accessibility check (axe-core) with no serious violation', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  for (const route of ['#/', '#/lab', '#/node/lxc-jellyfin', '#/proposals', '#/discovery', '#/journal', '#/admin']) {
    await page.goto(`${lab.origin}/${route}`);
    await page.waitForTimeout(500);
    // Evaluated through the DevTools protocol, which the page's CSP does not govern.
    await page.evaluate(axeSource);
    const result = await page.evaluate(() =>
      // eslint-disable-next-line no-undef
      axe.run(document, { resultTypes: ['violations'] }),
    );
    const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
    assert.deepEqual(
      serious.map((v) => `${route} ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
      [],
    );
  }
  await page.goto(`${lab.origin}/#/lab`);
  await page.waitForTimeout(500);
  await page.screenshot({ path: resolve(shots, 'lab-desktop.png') });
  await page.context().close();
});

test('no request ever left for another host', () => {
  assert.deepEqual(foreign, []);
});
