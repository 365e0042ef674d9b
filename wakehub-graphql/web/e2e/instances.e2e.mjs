// End-to-end: two servers on one PostgreSQL database (a private server that
// tests/peers/postgres.sh starts), the dashboard opened on the one that follows. Its header
// says so; a start asked there runs on the leader and the follower's page shows its
// progress and the node come up; once the leader is killed the follower takes over and,
// reloaded, says it leads and runs work itself.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bin, launchBrowser, repo, shots, waitStatus } from './harness.mjs';

const home = mkdtempSync(join(tmpdir(), 'wakehub-e2e-pg-'));
// PostgreSQL runs as its own user (the harness may be root): it must reach its directory.
chmodSync(home, 0o755);
const pg = join(home, 'pg');
const port = 20000 + Math.floor(Math.random() * 20000);
const db = `postgres://wakehub@127.0.0.1:${port}/postgres`;
// One home for both servers: they share the master key.
const env = { ...process.env, XDG_DATA_HOME: home, RUST_LOG: 'info' };
const admin = { name: 'admin', password: 'a-long-enough-password' };
const servers = [];
let browser;

/** `wakehub serve` on the shared database: its URL once it listens, and its log so far. */
function serve() {
  return new Promise((ok, fail) => {
    const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--db', db, '--lease', '3s', '--config',
      resolve(repo, 'examples/homelab.toml')], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const server = { child, url: '', log: '' };
    servers.push(server);
    let out = '';
    const timer = setTimeout(() => fail(new Error(`the server did not start: ${out}${server.log}`)), 30_000);
    child.stderr.on('data', (chunk) => (server.log += chunk));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const url = out.match(/listening on (http:\/\/[^/]+)\//)?.[1];
      if (url && !server.url) {
        clearTimeout(timer);
        server.url = url;
        ok(server);
      }
    });
  });
}

async function until(what, check, timeout = 20_000) {
  const end = Date.now() + timeout;
  while (!check()) {
    assert.ok(Date.now() < end, what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const leads = (s) => s.log.includes("this instance holds the database's lease");

before(async () => {
  const started = spawnSync(resolve(repo, 'tests/peers/postgres.sh'), ['start', pg, String(port)], { stdio: 'inherit' });
  assert.equal(started.status, 0, 'PostgreSQL did not start');
  const added = spawnSync(bin, ['user', 'add', admin.name, '--role', 'admin', '--db', db], { input: `${admin.password}\n`, env });
  assert.equal(added.status, 0, String(added.stderr));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const s of servers) s.child.kill('SIGKILL');
  spawnSync(resolve(repo, 'tests/peers/postgres.sh'), ['stop', pg]);
  rmSync(home, { recursive: true, force: true });
});

test('the dashboard on a follower says so, runs work through the leader, and leads once the leader is gone', async () => {
  const first = await serve();
  await until('the first server leads', () => leads(first));
  const second = await serve();
  await until('the second follows', () => second.log.includes('following it'));

  const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
  await page.goto(`${second.url}/`);
  await page.getByLabel(/user name|name/i).first().fill(admin.name);
  await page.getByLabel(/password/i).fill(admin.password);
  await page.getByRole('button', { name: /log in|sign in/i }).click();
  await page.getByText(admin.name, { exact: true }).first().waitFor();
  const role = page.getByTestId('instance-role');
  assert.equal((await role.textContent()).trim(), 'following');
  await page.screenshot({ path: resolve(shots, 'follower-desktop.png') });

  // A start asked of the follower: the leader runs it, the follower's page follows it.
  await page.getByRole('button', { name: 'Start lxc-jellyfin' }).click();
  await page.getByRole('dialog').getByRole('button', { name: /^(confirm|start)/i }).click();
  await page.locator('[data-node="lxc-jellyfin"]').getByText(/\d+\s*\/\s*\d+|step/i).first().waitFor({ timeout: 15_000 });
  await waitStatus(page, 'lxc-jellyfin', 'ON');

  // The leader is killed: the follower takes over and, reloaded, leads.
  first.child.kill('SIGKILL');
  await until('the follower takes over', () => leads(second), 15_000);
  await page.reload();
  await page.getByText(admin.name, { exact: true }).first().waitFor();
  await role.waitFor();
  assert.equal((await role.textContent()).trim(), 'leading');
  // It runs work itself now. (Its simulated machines are its own: what they say need not
  // be what the killed server's said, as real machines would.)
  await page.getByRole('button', { name: 'Start nas' }).first().click();
  await page.getByRole('dialog').getByRole('button', { name: /^(confirm|start)/i }).click();
  await waitStatus(page, 'nas', 'ON');
  await page.screenshot({ path: resolve(shots, 'follower-took-over-desktop.png') });
});
