// End-to-end: inactivity rules in Debian's Chromium against a real `wakehub serve --demo`
// whose monitor checks every second: a running node's tile and page count down to its idle
// time with its readings; an admin writes a rule in the node form (a bad one is refused on
// its field, nothing saved); the node page passes axe-core.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { axeSource, gql, lab, logIn, newPage, shots, useLab, waitStatus } from './harness.mjs';

useLab({ args: ['--monitor-every', '1s'] });

test('a running node under a rule counts down on its tile and its page', async () => {
  await gql('mutation { startNode(id: "lxc-jellyfin") { id } }');
  const page = await newPage();
  await logIn(page, lab.admin);
  await waitStatus(page, 'lxc-jellyfin', 'ON');
  const line = page.locator('[data-node="lxc-jellyfin"] [data-testid="idle-line"]');
  await line.getByText(/^(Stops after 20m idle|Idle in (19|20) min)$/).waitFor();
  // The server's next check gives the countdown; the dashboard reads it again within 10 s.
  await line.getByText(/^Idle in (19|20) min$/).waitFor({ timeout: 20_000 });

  await page.goto(`${lab.origin}/#/node/lxc-jellyfin`);
  const section = page.getByRole('region', { name: 'Inactivity of lxc-jellyfin' });
  await section.getByText('After 20m without activity: CPU > 10 %, requests through the proxy.').waitFor();
  await section.getByText(/last activity .*: seen on/).waitFor();
  // The readings, measured by the server between two samples.
  await section.locator('tr[data-signal="cpu_percent"]').getByText('0.0 %').waitFor({ timeout: 15_000 });
  await page.screenshot({ path: resolve(shots, 'idle-node.png') });
  await page.context().close();
});

test('an admin writes a rule in the node form; a bad one is refused on its field', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/node/vm-homeassistant`);
  await page.getByRole('button', { name: 'Edit' }).click();
  const form = page.getByRole('region', { name: 'Configuration of vm-homeassistant' });
  await form.getByLabel('Idle after').fill('10s');
  await form.getByLabel('TCP connections on ports').fill('8123');
  await form.getByRole('button', { name: 'Save vm-homeassistant' }).click();
  await form.getByText(/after: must be between 1m and 30days/).waitFor();
  let data = await gql('{ node(id: "vm-homeassistant") { idle { after } } }');
  assert.equal(data.node.idle, null, 'nothing saved');

  await form.getByLabel('Idle after').fill('45m');
  await form.getByLabel('Activity probe URL').fill('http://homeassistant.lab.home:8123/api/states');
  await form.getByRole('button', { name: 'Save vm-homeassistant' }).click();
  const section = page.getByRole('region', { name: 'Inactivity of vm-homeassistant' });
  await section.getByText('After 45m without activity: TCP 8123, a probe, requests through the proxy.').waitFor();
  await section.getByText(/Not running, or not measured yet/).waitFor();
  data = await gql('{ node(id: "vm-homeassistant") { idle { after tcpPorts probe { url } } } }');
  assert.deepEqual(data.node.idle, { after: '45m', tcpPorts: [8123], probe: { url: 'http://homeassistant.lab.home:8123/api/states' } });
  await page.context().close();
});

test('a node page with its inactivity passes an accessibility check (axe-core)', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/node/lxc-jellyfin`);
  await page.getByRole('region', { name: 'Inactivity of lxc-jellyfin' }).locator('tr[data-signal="cpu_percent"]').waitFor();
  await page.evaluate(axeSource);
  // eslint-disable-next-line no-undef
  const result = await page.evaluate(() => axe.run(document, { resultTypes: ['violations'] }));
  const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
  assert.deepEqual(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), []);
  await page.context().close();
});
