// End-to-end: machines and maintenance windows in Debian's Chromium against a real
// `wakehub serve --demo`, with one simulated machine (`patchbox`) whose SSH answers nothing
// (a port nobody listens on): its page says it was never refreshed, then why a refresh
// failed; a window is saved with a schedule in a time zone, planned, run on request, and
// its run followed to a report that says what needs attention. A viewer reads it all and
// is offered none of the buttons.
//
// Run by scripts/test.sh: `node --test e2e/*.e2e.mjs` with WAKEHUB_BIN naming the built binary.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { axeSource, gql, lab, logIn, newPage, shots, useLab } from './harness.mjs';

useLab();

/** A loopback port nothing listens on. */
const closedPort = () =>
  new Promise((ok) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

test('a machine that cannot be reached says so on its page and on its tile', async () => {
  const port = await closedPort();
  await gql(`mutation($input: NodeInput!) { createNode(input: $input) { id } }`, {
    input: {
      name: 'patchbox',
      kind: 'physical',
      pinned: true,
      tags: ['patch'],
      connector: { type: 'sim', initially: 'on', host: '127.0.0.1', ssh_port: port, ssh_password: 'not-used' },
    },
  });
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/node/patchbox`);
  const panel = page.getByTestId('machine-panel');
  await panel.getByText('Never refreshed').waitFor();
  await panel.getByRole('button', { name: 'Refresh patchbox' }).click();
  await panel.getByTestId('machine-error').getByText(/UNREACHABLE/).waitFor({ timeout: 30_000 });
  // Its actions are offered to an operator; the timeline has the failed refresh.
  await panel.getByRole('button', { name: 'Upgrade on patchbox' }).waitFor();
  await panel.getByTestId('machine-timeline').getByText(/refresh/i).first().waitFor();
  await page.goto(`${lab.origin}/#/`);
  await page.locator('[data-node="patchbox"] [data-testid="machine-badges"]').getByText('refresh failed', { exact: true }).waitFor();
  await page.context().close();
});

test('a window is saved, planned, run on request and followed to its report', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/maintenance`);
  const form = page.getByRole('form', { name: 'New maintenance window' });
  await form.getByLabel('Name', { exact: true }).fill('nightly');
  await form.getByLabel(/^Tags/).fill('patch');
  await form.getByLabel(/^Schedule/).fill('0 3 * * *');
  await form.getByLabel(/^Time zone/).fill('Europe/Paris');
  await form.getByRole('button', { name: 'Save the window' }).click();
  const window = page.locator('[data-window="nightly"]');
  await window.getByText(/Europe\/Paris/).waitFor();
  await window.getByText(/next in/).waitFor();

  // A bad schedule is refused with its reason, and nothing is saved.
  await form.getByLabel('Name', { exact: true }).fill('broken');
  await form.getByLabel(/^Tags/).fill('patch');
  await form.getByLabel(/^Schedule/).fill('0 25 * * *');
  await form.getByRole('button', { name: 'Save the window' }).click();
  await page.getByRole('alert').getByText(/VALIDATION/).waitFor();
  assert.equal(await page.locator('[data-window="broken"]').count(), 0);

  // The plan: patchbox, on, never read; nothing asleep to wake.
  await window.getByRole('button', { name: 'Plan' }).click();
  const plan = window.getByTestId('plan');
  await plan.locator('[data-machine="patchbox"]').getByText(/never refreshed/).waitFor({ timeout: 30_000 });
  await page.screenshot({ path: resolve(shots, 'maintenance-plan-desktop.png') });

  // Run now: followed live until it ends; patchbox cannot be reached, so it needs attention.
  await window.getByRole('button', { name: 'Run now: nightly' }).click();
  const run = page.locator('li[data-run][data-status="attention"]').first();
  await run.waitFor({ timeout: 60_000 });
  await run.getByText('Report').click();
  await run.getByTestId('run-report').getByText(/patchbox: refresh: /).waitFor();
  await page.screenshot({ path: resolve(shots, 'maintenance-run-desktop.png') });

  // The journal tells the run step by step.
  const { events } = await gql(`{ events(kinds: ["maintenance"], first: 50) { nodes { kind } } }`);
  assert.ok(events.nodes.length >= 3, JSON.stringify(events));
  await page.context().close();
});

test('a viewer reads windows, plans and runs but is offered no button that would be refused', async () => {
  const page = await newPage();
  await logIn(page, lab.viewer);
  await page.goto(`${lab.origin}/#/maintenance`);
  await page.locator('[data-window="nightly"]').waitFor();
  assert.equal(await page.getByRole('button', { name: /Run now/ }).count(), 0);
  assert.equal(await page.getByRole('form', { name: 'New maintenance window' }).count(), 0);
  await page.locator('li[data-run]').first().waitFor();
  await page.goto(`${lab.origin}/#/node/patchbox`);
  await page.getByTestId('machine-panel').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Refresh patchbox' }).count(), 0);
  await page.context().close();
});

test('the maintenance page and a machine page pass an accessibility check (axe-core)', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  for (const route of ['#/maintenance', '#/node/patchbox']) {
    await page.goto(`${lab.origin}/${route}`);
    await page.waitForTimeout(500);
    await page.evaluate(axeSource);
    // eslint-disable-next-line no-undef
    const result = await page.evaluate(() => axe.run(document, { resultTypes: ['violations'] }));
    const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
    assert.deepEqual(serious.map((v) => `${route} ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), []);
  }
  await page.context().close();
});
