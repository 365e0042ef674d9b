// End-to-end: power schedules in Debian's Chromium against a real `wakehub serve --demo`:
// a keep-on schedule saved through the form in a time zone shows what it means and its next
// times; a bad cron is refused with its reason and nothing is saved; a viewer reads the
// schedules and is offered no form; the page passes axe-core.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { axeSource, lab, logIn, newPage, shots, useLab } from './harness.mjs';

useLab();

test('a schedule is saved with its time zone and shows its next times', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/schedules`);
  await page.getByText('No schedule yet.').waitFor();
  const form = page.getByRole('form', { name: 'New power schedule' });
  await form.getByLabel('Name', { exact: true }).fill('movie-night');
  await form.getByLabel('Action').selectOption('KEEP_ON');
  await form.getByLabel(/^Tags/).fill('media');
  await form.getByLabel(/^Schedule/).fill('0 20 * * FRI');
  await form.getByLabel(/^Time zone/).fill('Europe/Paris');
  await form.getByLabel(/^Keep on for/).fill('3');
  await form.getByRole('button', { name: 'Save the schedule' }).click();
  const card = page.locator('[data-schedule="movie-night"]');
  await card.getByText('Keep on for 3h').waitFor();
  await card.getByText(/20:00.*Friday|Friday.*20:00/).waitFor();
  await card.getByText(/Europe\/Paris/).waitFor();
  assert.equal(await card.locator('time').count(), 3);
  await page.screenshot({ path: resolve(shots, 'schedules-desktop.png') });

  // A bad cron: refused with its reason, nothing saved.
  await form.getByLabel('Name', { exact: true }).fill('broken');
  await form.getByLabel('Action').selectOption('START');
  await form.getByLabel(/^Nodes/).fill('nas');
  await form.getByLabel(/^Schedule/).fill('0 25 * * *');
  await form.getByRole('button', { name: 'Save the schedule' }).click();
  await page.getByRole('alert').getByText(/VALIDATION/).waitFor();
  assert.equal(await page.locator('[data-schedule="broken"]').count(), 0);
  await page.context().close();
});

test('a viewer reads the schedules and is offered no form', async () => {
  const page = await newPage({ phone: true });
  await logIn(page, lab.viewer);
  await page.goto(`${lab.origin}/#/schedules`);
  await page.locator('[data-schedule="movie-night"]').waitFor();
  assert.equal(await page.getByRole('form', { name: 'New power schedule' }).count(), 0);
  assert.equal(await page.getByRole('button', { name: /Delete/ }).count(), 0);
  await page.context().close();
});

test('the schedules page passes an accessibility check (axe-core)', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/schedules`);
  await page.locator('[data-schedule="movie-night"]').waitFor();
  await page.evaluate(axeSource);
  // eslint-disable-next-line no-undef
  const result = await page.evaluate(() => axe.run(document, { resultTypes: ['violations'] }));
  const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
  assert.deepEqual(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), []);
  await page.context().close();
});
