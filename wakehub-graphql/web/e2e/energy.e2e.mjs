// End-to-end: the energy page and the notification rules in Debian's Chromium against a real
// `wakehub serve --demo`: the month's chart and table per node and tag, in money once an
// admin set a price; a webhook rule saved from the Admin page, its test delivered to a real
// receiver (a Node HTTP server) and shown sent; both pages pass axe-core.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { axeSource, lab, logIn, newPage, shots, useLab } from './harness.mjs';

useLab();

const received = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    received.push({ signature: req.headers['x-wakehub-signature'], body: JSON.parse(body) });
    res.end('ok');
  });
});
after(() => receiver.close());

async function axe(page) {
  await page.evaluate(axeSource);
  // eslint-disable-next-line no-undef
  const result = await page.evaluate(() => axe.run(document, { resultTypes: ['violations'] }));
  const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
  assert.deepEqual(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), []);
}

test('the energy page charts the month per node and says the saving in money once priced', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/energy`);
  await page.getByRole('img', { name: /Energy per node/ }).waitFor();
  const rows = page.getByTestId('energy-nodes').locator('tbody tr');
  assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.node)), ['machine1', 'machine2', 'nas']);
  await page.getByText('65 W on, 2 W off').waitFor();
  const form = page.getByRole('form', { name: 'Energy price' });
  await form.getByLabel(/Price per kWh/).fill('0.25');
  await form.getByRole('button', { name: 'Set the price' }).click();
  await page.getByTestId('energy-total').getByText(/EUR/).waitFor();
  await page.screenshot({ path: resolve(shots, 'energy.png') });
  await axe(page);
  await page.context().close();
});

test('a webhook rule saved from the Admin page delivers its test, shown sent', async () => {
  await new Promise((ok) => receiver.listen(0, '127.0.0.1', ok));
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/admin`);
  const form = page.getByRole('form', { name: 'New notification rule' });
  await form.getByLabel('Name', { exact: true }).fill('phone-hook');
  await form.getByLabel('Send to').selectOption('WEBHOOK');
  await form.getByLabel('URL').fill(`http://127.0.0.1:${receiver.address().port}/hook`);
  await form.getByLabel('Signing secret').fill('e2e-secret');
  await form.getByRole('button', { name: 'Save the rule' }).click();
  const rule = page.locator('[data-rule="phone-hook"]');
  await rule.getByText('secret stored').waitFor();
  await rule.getByRole('button', { name: 'Send a test through phone-hook' }).click();
  await page.getByTestId('deliveries').locator('tr[data-status="sent"]').getByText('WakeHub test notification').waitFor({ timeout: 30_000 });
  assert.equal(received.length, 1);
  assert.match(received[0].signature, /^sha256=[0-9a-f]{64}$/);
  assert.equal(received[0].body.event, 'test');
  await axe(page);
  await page.context().close();
});
