// End-to-end: the dashboard in Debian's Chromium (driven by playwright-core) against a real
// `wakehub serve --demo` (see harness.mjs): the stories of issue 12, in order — they share
// one server, so each starts from where the previous one left the lab.
//
// Run by scripts/test.sh: `node --test e2e/*.e2e.mjs` with WAKEHUB_BIN naming the built binary.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { axeSource, foreign, gql, lab, logIn, newPage, shots, useLab, waitStatus } from './harness.mjs';

useLab();

test('an admin logs in and sees their name, role and the pinned tiles grouped by tag', async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.getByText('admin', { exact: false }).first().waitFor();
  for (const group of ['media', 'docs', 'home', 'infra']) {
    await page.getByRole('heading', { name: group }).first().waitFor();
  }
  // Every tile shows the state the server observed: a fresh demo lab is all off.
  const badge = page.locator('[data-node="lxc-jellyfin"] [data-status]').first();
  assert.equal(await badge.getAttribute('data-shown'), 'off');
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
  await page.screenshot({ path: resolve(shots, 'plan-desktop.png') });
  await dialog.getByRole('button', { name: /^(confirm|start)/i }).click();
  // While it runs, the tile says where it is (step k of n) …
  await page.locator('[data-node="lxc-jellyfin"]').getByText(/\d+\s*\/\s*\d+|step/i).first().waitFor({ timeout: 15_000 });
  await page.screenshot({ path: resolve(shots, 'dashboard-desktop.png') });
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
  await page.screenshot({ path: resolve(shots, 'dashboard-phone.png') });
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
  // And the views caught up: the tile says what happened while away.
  await page.goto(`${lab.origin}/#/`);
  await waitStatus(page, 'vm-homeassistant', 'ON');
  await page.context().close();
});

test('a disconnection while the page signs in loses nothing either', async () => {
  const page = await newPage();
  // Hold the question "where does the journal stand" (asked once signed in, before any view
  // shows) until the network is gone: the page must ask again once it is back.
  let asked;
  const arrived = new Promise((resolve) => (asked = resolve));
  let release;
  const held = new Promise((resolve) => (release = resolve));
  await page.route('**/graphql', async (route) => {
    if (route.request().postData()?.includes('query Latest')) {
      asked();
      await held;
    }
    await route.continue().catch(() => {});
  });
  await page.goto(`${lab.origin}/`);
  await page.getByLabel(/name/i).first().fill(lab.admin.name);
  await page.getByLabel(/password/i).fill(lab.admin.password);
  await page.getByRole('button', { name: /log in/i }).click();
  await arrived;
  const { events } = await gql('{ events(newestFirst: true, first: 1) { edges { node { id } } } }');
  const cutoff = events.edges[0].node.id;

  lab.relay.cut();
  release();
  const { stopNode } = await gql('mutation { stopNode(id: "vm-homeassistant") { id } }');
  for (;;) {
    const { cascade } = await gql('query($id: ID!) { cascade(id: $id) { status } }', { id: stopNode.id });
    if (!['PENDING', 'IN_PROGRESS'].includes(cascade.status)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await page.unroute('**/graphql');
  lab.relay.restore();

  await page.getByTestId('user-name').waitFor({ timeout: 30_000 });
  await page.goto(`${lab.origin}/#/journal`);
  await page.locator('[data-connection="connected"]').waitFor({ timeout: 30_000 });
  const missed = await gql('query($a: ID!) { events(after: $a, first: 500) { edges { node { id } } } }', { a: cutoff });
  const ids = missed.events.edges.map((e) => e.node.id);
  assert.ok(ids.length > 2, `events happened during the outage: ${ids}`);
  for (const id of ids) {
    await page.locator(`[data-event-id="${id}"]`).first().waitFor({ timeout: 10_000 });
    assert.equal(await page.locator(`[data-event-id="${id}"]`).count(), 1, `${id} is shown once`);
  }
  await page.goto(`${lab.origin}/#/`);
  await waitStatus(page, 'vm-homeassistant', 'OFF');
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

test('the lab graph fits the width, keeps every label in its card and every guest in its host', async () => {
  for (const phone of [false, true]) {
    const page = await newPage({ phone });
    await logIn(page, lab.admin);
    await page.goto(`${lab.origin}/#/lab`);
    const graph = page.getByTestId('lab-graph');
    await graph.locator('[data-node="machine2"]').waitFor();
    const found = await page.evaluate(() => {
      const box = (el) => el.getBoundingClientRect();
      const within = (inner, outer) => inner.left >= outer.left - 0.5 && inner.right <= outer.right + 0.5 && inner.top >= outer.top - 0.5 && inner.bottom <= outer.bottom + 0.5;
      const scroller = document.querySelector('[data-testid="lab-graph"]').parentElement;
      const cards = [...document.querySelectorAll('[data-testid="lab-graph"] a[data-node]')];
      return {
        clipped: scroller.scrollWidth > scroller.clientWidth ? [`${scroller.scrollWidth} > ${scroller.clientWidth}`] : [],
        outside: cards.filter((a) => !within(box(a.querySelector('rect')), box(scroller))).map((a) => a.dataset.node),
        overflowing: cards.flatMap((a) => [...a.querySelectorAll('text')].filter((t) => !within(box(t), box(a.querySelector('rect')))).map((t) => `${a.dataset.node}: ${t.textContent}`)),
        hosts: Object.fromEntries([...document.querySelectorAll('[data-testid="lab-graph"] [data-host]')].map((c) => [c.dataset.host, cards.filter((a) => within(box(a.querySelector('rect')), box(c))).map((a) => a.dataset.node).sort()])),
      };
    });
    assert.deepEqual({ clipped: found.clipped, outside: found.outside, overflowing: found.overflowing }, { clipped: [], outside: [], overflowing: [] }, phone ? 'phone' : 'desktop');
    // Each host's box holds its own card and everything that runs on it, at any depth.
    const { nodes } = await gql('{ nodes { name parent { name } } }');
    const under = (host) => [host, ...nodes.filter((n) => n.parent?.name === host).flatMap((n) => under(n.name))];
    const hosts = [...new Set(nodes.filter((n) => n.parent).map((n) => n.parent.name))];
    assert.deepEqual(found.hosts, Object.fromEntries(hosts.map((h) => [h, under(h).sort()])));
    await page.context().close();
  }
});

test('no request ever left for another host', () => {
  assert.deepEqual(foreign, []);
});
