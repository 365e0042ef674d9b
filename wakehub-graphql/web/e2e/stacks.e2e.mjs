// End-to-end: a stack in Debian's Chromium against a real `wakehub serve --demo` and a real
// Docker Engine this file starts (a private dockerd, a busybox image imported offline): the
// stack page with no version, a compose file saved as version 1, applied with its log live
// until every health check passes, its services healthy, version 2 diffed against it and
// applied, a rollback to version 1, the containers' events live. A viewer reads it all and
// is offered no button.
//
// Run by scripts/test.sh (as root, which dockerd needs): `node --test e2e/*.e2e.mjs`.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { axeSource, gql, lab, logIn, newPage, shots, useLab } from './harness.mjs';

useLab();

const IMAGE = 'wakehub-e2e/app:1';
const docker = { dir: '', socket: '', child: null };
const cli = (...args) =>
  execFileSync('docker', ['-H', `unix://${docker.socket}`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

before(async () => {
  assert.ok(existsSync('/usr/sbin/dockerd'), 'dockerd is missing (scripts/test.sh installs docker.io)');
  docker.dir = mkdtempSync('/tmp/whe2e');
  docker.socket = join(docker.dir, 'docker.sock');
  docker.child = spawn('/usr/sbin/dockerd', [
    '--data-root', join(docker.dir, 'data'), '--exec-root', join(docker.dir, 'exec'),
    '--pidfile', join(docker.dir, 'dockerd.pid'), '-H', `unix://${docker.socket}`,
    '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-masq=false',
    `--default-address-pool=base=10.${60 + (process.pid % 30)}.0.0/16,size=24`,
  ], { stdio: 'ignore' });
  const deadline = Date.now() + 40_000;
  for (;;) {
    try {
      cli('version', '--format', '{{.Server.Version}}');
      break;
    } catch {
      assert.ok(Date.now() < deadline, 'dockerd did not answer');
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const root = join(docker.dir, 'rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'tmp'));
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  for (const applet of ['sh', 'sleep', 'touch', 'test']) symlinkSync('busybox', join(root, 'bin', applet));
  execFileSync('tar', ['-C', root, '-cf', join(docker.dir, 'rootfs.tar'), '.']);
  cli('import', join(docker.dir, 'rootfs.tar'), IMAGE);
  await gql(`mutation($input: NodeInput!) { createNode(input: $input) { id } }`, {
    input: { name: 'dockerbox', kind: 'physical', offers: ['docker'], connector: { type: 'sim', initially: 'on', docker_host: `unix://${docker.socket}` } },
  });
  await gql(`mutation($input: NodeInput!) { createNode(input: $input) { id } }`, {
    input: { name: 'shop', kind: 'stack', parent: 'dockerbox', pinned: true, connector: { type: 'stack', wait_secs: 30 } },
  });
});

after(() => {
  try {
    for (const id of cli('ps', '-aq').split(/\s+/).filter(Boolean)) cli('rm', '-f', id);
    cli('network', 'prune', '-f');
  } catch {}
  docker.child?.kill('SIGTERM');
  try {
    execFileSync('sh', ['-c', `grep -o '${docker.dir}[^ ]*' /proc/mounts | xargs -r -n1 umount -l`]);
  } catch {}
  setTimeout(() => rmSync(docker.dir, { recursive: true, force: true }), 3000).unref();
});

const compose = (web) => `services:
  db:
    image: ${IMAGE}
    command: [sh, -c, 'echo db ready; touch /tmp/ready; exec sleep 600']
    stop_grace_period: 1s
    environment:
      DB_PASSWORD: e2e-secret-value
    healthcheck: {test: [CMD, test, -f, /tmp/ready], interval: 1s, timeout: 1s, retries: 2}
  web:
    image: ${IMAGE}
    command: [sleep, '${web}']
    stop_grace_period: 1s
    depends_on: {db: {condition: service_healthy}}
`;

async function runCommand(page, button, confirm) {
  await page.getByRole('button', { name: button, exact: true }).first().click();
  await page.getByRole('dialog').getByRole('button', { name: confirm, exact: true }).click();
}

test('a stack is written, applied with its log live, diffed, and rolled back', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/stacks`);
  await page.locator('[data-stack="shop"][data-state="not applied"]').waitFor();
  await page.locator('[data-stack="shop"]').getByRole('link', { name: 'shop' }).click();
  await page.getByTestId('stack-versions').getByText('No version yet.').waitFor();

  // Version 1, saved through the form; its secret comes back sealed.
  const form = page.getByRole('form', { name: 'New version of shop' });
  await form.getByLabel('Compose file').fill(compose(600));
  await form.getByLabel(/^Note/).fill('first');
  await form.getByRole('button', { name: 'Save as a new version' }).click();
  await form.getByText('Version 1 written. Apply it to run it.').waitFor();
  await page.locator('[data-version="1"]').getByRole('button', { name: 'Compose file' }).click();
  await page.getByTestId('compose').getByText(/DB_PASSWORD: '\*{8}'/).waitFor();
  assert.equal(await page.getByText('e2e-secret-value').count(), 0);
  // A file outside the subset is refused with its code and line.
  await form.getByLabel('Compose file').fill('services:\n  a:\n    image: x\n    privileged: true\n');
  await form.getByRole('button', { name: 'Save as a new version' }).click();
  await page.getByRole('alert').getByText(/line 4.*COMPOSE_INVALID|COMPOSE_INVALID/).waitFor();

  // Apply: its log live, until db is healthy and web runs.
  await runCommand(page, 'Apply version 1', 'Apply');
  const log = page.getByTestId('stack-log');
  await log.getByText(/db: healthy/).waitFor({ timeout: 60_000 });
  await page.locator('[data-command][data-status="done"]').first().waitFor({ timeout: 60_000 });
  const services = page.getByTestId('stack-state');
  await services.locator('tr[data-service="db"] td.health-healthy').waitFor();
  await services.locator('tr[data-service="web"]').getByText('running').waitFor();
  await page.locator('[data-testid="stack-state"][data-state="healthy"]').waitFor();
  // A service's output, its last lines.
  await services.getByRole('button', { name: 'Output of db' }).click();
  await page.getByTestId('service-output').getByText('db ready').waitFor();
  await page.screenshot({ path: resolve(shots, 'stack-applied-desktop.png') });

  // Version 2: its diff against the current one, then applied.
  await form.getByLabel('Compose file').fill(compose(601));
  await form.getByRole('button', { name: 'Save as a new version' }).click();
  await form.getByText('Version 2 written. Apply it to run it.').waitFor();
  const v2 = page.locator('[data-version="2"]');
  await v2.getByRole('button', { name: 'Diff with version 1' }).click();
  await page.getByTestId('diff').locator('.d-remove').getByText("'600'").waitFor();
  await page.getByTestId('diff').locator('.d-add').getByText("'601'").waitFor();
  await page.screenshot({ path: resolve(shots, 'stack-diff-desktop.png') });
  await v2.getByRole('button', { name: 'Apply version 2' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Apply', exact: true }).click();
  await page.locator('[data-testid="stack-state"]').getByText('on version 2').waitFor({ timeout: 60_000 });

  // Roll back to version 1: the containers' events come live.
  await page.locator('[data-version="1"]').getByRole('button', { name: 'Roll back to version 1' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Roll back', exact: true }).click();
  await page.locator('[data-testid="stack-state"]').getByText('on version 1').waitFor({ timeout: 60_000 });
  await page.getByTestId('stack-events').getByText(/web: (start|destroy|die)/).first().waitFor({ timeout: 30_000 });
  assert.equal(cli('inspect', '--format', '{{index .Config.Labels "io.wakehub.version"}}', 'shop-web'), '1');

  // The journal tells the commands.
  const { events } = await gql(`{ events(kinds: ["stack-command"], first: 50) { nodes { kind } } }`);
  assert.ok(events.nodes.length >= 9, JSON.stringify(events));
  await page.context().close();
});

test('a viewer reads the stack but is offered no command', async () => {
  const page = await newPage({ phone: true });
  await logIn(page, lab.viewer);
  await page.goto(`${lab.origin}/#/stack/shop`);
  await page.locator('[data-version="1"]').waitFor();
  assert.equal(await page.getByRole('button', { name: /Apply|Roll back|Stop|Remove|Cancel/ }).count(), 0);
  assert.equal(await page.getByRole('form', { name: 'New version of shop' }).count(), 0);
  await page.screenshot({ path: resolve(shots, 'stack-viewer-phone.png') });
  await page.context().close();
});

test('the stack pages pass an accessibility check (axe-core)', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  for (const route of ['#/stacks', '#/stack/shop']) {
    await page.goto(`${lab.origin}/${route}`);
    await page.waitForTimeout(800);
    await page.evaluate(axeSource);
    // eslint-disable-next-line no-undef
    const result = await page.evaluate(() => axe.run(document, { resultTypes: ['violations'] }));
    const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
    assert.deepEqual(serious.map((v) => `${route} ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), []);
  }
  await page.context().close();
});
