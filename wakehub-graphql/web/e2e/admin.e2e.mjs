// End-to-end: what an admin does beyond the everyday stories of dashboard.e2e.mjs — the node
// form with the server's validation on the field, links and deletion; a node's neighbours
// and history; a cascade cancelled and run again; the timeline and its critical path;
// discovery; the journal's filters and paging; people and API tokens. Through the UI only,
// against its own `wakehub serve --demo` (harness.mjs); results are read on the page and,
// where it says more, through the API (`gql`). The tests share the server, in order.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { foreign, gql, lab, logIn, newPage, shots, useLab, waitStatus } from './harness.mjs';

useLab();

/** A test on a fresh desktop page, closed after it; a failure leaves a screenshot behind. */
function story(name, body) {
  test(name, async () => {
    const page = await newPage();
    try {
      await body(page);
    } catch (error) {
      const file = `admin-failed-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}.png`;
      await page.screenshot({ path: resolve(shots, file), fullPage: true }).catch(() => {});
      throw error;
    } finally {
      await page.context().close();
    }
  });
}

/** Polls `read` until `ok` holds for what it returns (or fails after `timeout` ms). */
async function eventually(read, ok, what, timeout = 15_000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await read();
    if (ok(last)) return last;
    if (Date.now() > end) assert.fail(`${what}: still ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

const nodeOf = async (name, fields) => (await gql(`query($id: ID!) { node(id: $id) { ${fields} } }`, { id: name })).node;

story('an admin creates a node with the form, sees the problem on the field, then edits, links, unlinks and deletes it', async (page) => {
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/lab`);
  await page.getByRole('link', { name: 'New node' }).click();
  await page.getByRole('heading', { name: 'New node' }).waitFor();

  await page.getByLabel('Name', { exact: true }).fill('e2e-service');
  await page.getByRole('combobox', { name: 'Kind', exact: true }).fill('container');
  await page.getByLabel(/^Runs on/).selectOption('vm-docker');
  await page.getByLabel('Start timeout').fill('soon');
  await page.getByRole('button', { name: 'Create node' }).click();
  // The server's VALIDATION problem sits on the field it is about.
  const problem = page.locator('[data-field-error="startTimeout"]');
  await problem.waitFor();
  assert.match(await problem.textContent(), /soon.*not a duration/);
  assert.equal(await page.getByLabel('Start timeout').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator('[data-field-error]').count(), 1, 'only the start timeout is wrong');
  assert.equal(await nodeOf('e2e-service', 'id'), null, 'nothing was created');

  await page.getByLabel('Start timeout').fill('30s');
  await page.getByRole('button', { name: 'Create node' }).click();
  await page.getByRole('heading', { name: 'e2e-service' }).waitFor();
  assert.equal(new URL(page.url()).hash, '#/node/e2e-service');
  assert.equal((await nodeOf('e2e-service', 'startTimeout')).startTimeout, '30s');

  // Edit: the form starts from what the node has; the change is all that changes.
  await page.getByRole('button', { name: 'Edit' }).click();
  const form = page.getByRole('region', { name: 'Configuration of e2e-service' });
  assert.equal(await form.getByLabel('Start timeout').inputValue(), '30s');
  await form.getByLabel('Stop timeout').fill('45s');
  await form.getByLabel(/^Tags/).fill('e2e, lab');
  await form.getByRole('button', { name: 'Save e2e-service' }).click();
  await page.getByRole('button', { name: 'Edit' }).waitFor();
  assert.deepEqual(await nodeOf('e2e-service', 'startTimeout stopTimeout tags'), { startTimeout: '30s', stopTimeout: '45s', tags: ['e2e', 'lab'] });

  // Link to a dependency, then unlink.
  await page.getByLabel('Dependency to add to e2e-service').selectOption({ label: 'nas' });
  await page.getByRole('button', { name: 'Link', exact: true }).click();
  await page.getByTestId('needs').getByRole('link', { name: 'nas' }).waitFor();
  assert.deepEqual((await nodeOf('e2e-service', 'dependsOn { name }')).dependsOn, [{ name: 'nas' }]);
  await page.getByRole('button', { name: 'Unlink e2e-service from nas' }).click();
  await page.getByText('No dependencies.').waitFor();
  assert.deepEqual((await nodeOf('e2e-service', 'dependsOn { name }')).dependsOn, []);

  // Delete asks first, in the app's own dialog: Cancel leaves the node in place...
  await page.getByRole('button', { name: 'Delete e2e-service' }).click();
  const ask = page.getByRole('dialog', { name: 'Delete node e2e-service?' });
  await ask.getByText('Its links go with it.').waitFor();
  await ask.getByRole('button', { name: 'Cancel' }).click();
  await ask.waitFor({ state: 'detached' });
  assert.equal((await nodeOf('e2e-service', 'name')).name, 'e2e-service');
  await page.locator('[data-node="e2e-service"]').first().waitFor();

  // ...and its confirm button deletes.
  await page.getByRole('button', { name: 'Delete e2e-service' }).click();
  await ask.getByRole('button', { name: 'Delete e2e-service' }).click();
  await page.getByRole('heading', { name: 'Lab' }).waitFor();
  await page.locator('[data-node="nas"]').first().waitFor();
  assert.equal(await page.locator('[data-node="e2e-service"]').count(), 0);
  assert.equal(await nodeOf('e2e-service', 'id'), null);
});

story('a node page shows what holds it up, what it needs and its status history', async (page) => {
  await logIn(page, lab.admin);
  await page.getByRole('button', { name: 'Start lxc-jellyfin' }).click();
  await page.getByRole('button', { name: 'Confirm start of lxc-jellyfin' }).click();
  await waitStatus(page, 'lxc-jellyfin', 'ON');

  await page.goto(`${lab.origin}/#/node/nas`);
  await page.getByTestId('held-by').getByRole('link', { name: 'lxc-jellyfin' }).waitFor();
  await page.getByTestId('status-history').locator('[data-state="ON"]').first().waitFor();
  const { heldBy } = await nodeOf('nas', 'heldBy { name }');
  assert.deepEqual(await page.getByTestId('held-by').getByRole('link').allTextContents(), heldBy.map((n) => n.name));

  await page.goto(`${lab.origin}/#/node/lxc-jellyfin`);
  await page.getByTestId('needs').getByRole('link', { name: 'nas' }).waitFor();
  // Newest first: it was off, then starting, then on.
  await page.getByTestId('status-history').locator('[data-state="ON"]').first().waitFor();
  const states = await page.getByTestId('status-history').locator('[data-state]').evaluateAll((items) => items.map((i) => i.dataset.state));
  assert.equal(states[0], 'ON', `latest first: ${states}`);
});

story('the page of a finished cascade draws a timeline row per step with its duration and marks the critical path', async (page) => {
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/node/lxc-jellyfin`);
  await page.getByRole('link', { name: /^start · completed/ }).first().click();
  await page.locator('[data-testid="cascade-status"][data-status="COMPLETED"]').waitFor();

  const id = decodeURIComponent(new URL(page.url()).hash.replace('#/cascade/', ''));
  const { cascade } = await gql('query($id: ID!) { cascade(id: $id) { steps { index nodeName after status startedAt completedAt } } }', { id });
  const rows = page.locator('[data-timeline-step]');
  assert.equal(await rows.count(), cascade.steps.length);
  const byName = Object.fromEntries(cascade.steps.map((s) => [s.nodeName, s]));
  for (const step of cascade.steps) {
    const row = page.locator(`[data-timeline-step="${step.index}"]`);
    assert.equal(await row.getAttribute('data-status'), step.status);
    const took = Date.parse(step.completedAt) - Date.parse(step.startedAt);
    assert.equal(Number(await row.getAttribute('data-duration-ms')), took, `${step.nodeName} took ${took} ms`);
    assert.match(await row.locator('[data-duration]').textContent(), /\d/);
  }
  // machine2 (3 s) and nas (2.5 s) start side by side; jellyfin waits for both. The
  // cascade took as long as it did because of machine2: that is the critical path.
  const critical = async (name) => page.locator(`[data-timeline-step="${byName[name].index}"]`).getAttribute('data-critical');
  assert.equal(await critical('machine2'), 'true');
  assert.equal(await critical('lxc-jellyfin'), 'true');
  assert.equal(await critical('nas'), 'false');
});

let rerun = null;

story('a running cascade is cancelled from its page, and "Run again" starts a new one', async (page) => {
  await logIn(page, lab.admin);
  // paperless needs machine1 (3 s to start), then vm-docker, postgres and itself: there is
  // time to cancel after the first step.
  await page.getByRole('button', { name: 'Start paperless' }).click();
  await page.getByRole('button', { name: 'Confirm start of paperless' }).click();
  await page.getByRole('link', { name: /Starting paperless: follow the cascade/ }).click();
  await page.locator('[data-testid="cascade-status"][data-status="IN_PROGRESS"]').waitFor();
  const first = decodeURIComponent(new URL(page.url()).hash.replace('#/cascade/', ''));

  await page.getByRole('button', { name: 'Cancel cascade' }).click();
  // The step in flight (machine1) finishes; none begins after it.
  await page.locator('[data-testid="cascade-status"][data-status="CANCELLED"]').waitFor({ timeout: 15_000 });
  await page.locator('[data-timeline-step][data-status="CANCELLED"]').first().waitFor();
  const { cascade } = await gql('query($id: ID!) { cascade(id: $id) { status steps { nodeName status } } }', { id: first });
  assert.equal(cascade.status, 'CANCELLED');
  assert.equal(cascade.steps.find((s) => s.nodeName === 'paperless').status, 'CANCELLED');

  await page.getByRole('button', { name: 'Run again' }).click();
  await page.getByRole('link', { name: first }).waitFor();
  rerun = decodeURIComponent(new URL(page.url()).hash.replace('#/cascade/', ''));
  assert.notEqual(rerun, first);
  await page.locator('[data-testid="cascade-status"][data-status="COMPLETED"]').waitFor({ timeout: 30_000 });
  const again = await gql('query($id: ID!) { cascade(id: $id) { rerunOf status } }', { id: rerun });
  assert.deepEqual(again.cascade, { rerunOf: first, status: 'COMPLETED' });
  await page.goto(`${lab.origin}/#/`);
  await waitStatus(page, 'paperless', 'ON');
});

story('the Discover button runs a discovery and reports what it found', async (page) => {
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/discovery`);
  await page.getByRole('button', { name: 'Discover machine1' }).click();
  const report = page.getByRole('status').filter({ hasText: /^machine1:/ });
  await report.waitFor();
  // The demo's machine1 lists vm-nextcloud, known since start-up: refreshed, not new.
  assert.match(await report.textContent(), /^machine1: 0 new, 1 refreshed, 0 gone\.$/);
});

story('the journal filters by node, kind and time, and pages back to older events', async (page) => {
  // More events than a page (50): a few short cascades if the stories so far made too few.
  const total = async () => (await gql('{ events(first: 500) { nodes { id } } }')).events.nodes.length;
  while ((await total()) <= 60) {
    for (const mutation of ['startNode', 'stopNode']) {
      const { [mutation]: c } = await gql(`mutation { ${mutation}(id: "vm-ubuntu") { id } }`);
      await eventually(async () => (await gql('query($id: ID!) { cascade(id: $id) { status } }', { id: c.id })).cascade.status, (s) => !['PENDING', 'IN_PROGRESS'].includes(s), 'the cascade ends');
    }
  }

  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/journal`);
  const rows = page.locator('[data-testid="journal"] tbody tr[data-event-id]');
  const shown = () => rows.evaluateAll((trs) => trs.map((tr) => ({ id: tr.dataset.eventId, kind: tr.dataset.kind, at: tr.dataset.at, node: tr.querySelector('[data-testid="event-node"]').textContent })));
  const number = (id) => Number(id.split(':')[1]);
  const apply = () => page.getByRole('button', { name: 'Apply' }).click();

  // Newest first, a page at a time; "Load older events" adds the page before.
  const firstPage = await eventually(shown, (r) => r.length === 50, 'the first page');
  await page.getByRole('button', { name: 'Load older events' }).click();
  const twoPages = await eventually(shown, (r) => r.length > 50, 'an older page');
  const ids = twoPages.map((r) => number(r.id));
  assert.deepEqual(ids, [...ids].sort((a, b) => b - a), 'newest first');
  assert.ok(Math.min(...ids) < Math.min(...firstPage.map((r) => number(r.id))), 'older events were added');
  assert.equal(new Set(ids).size, ids.length, 'each event once');

  const expected = async (args) => (await gql(`{ events(newestFirst: true, first: 50, ${args}) { nodes { id } } }`)).events.nodes.map((e) => e.id);

  // By node.
  await page.getByLabel(/^Node/).selectOption('nas');
  await apply();
  const nas = await expected('node: "nas"');
  assert.ok(nas.length > 0);
  const byNode = await eventually(shown, (r) => r.length === nas.length && r.every((e) => e.node === 'nas'), 'only nas');
  assert.deepEqual(byNode.map((e) => e.id), nas);

  // By kind (and node cleared).
  await page.getByLabel(/^Node/).selectOption('');
  await page.getByLabel(/^Kind/).selectOption(['cascade-complete']);
  await apply();
  const completes = await expected('kinds: ["cascade-complete"]');
  assert.ok(completes.length > 0);
  const byKind = await eventually(shown, (r) => r.length === completes.length && r.every((e) => e.kind === 'cascade-complete'), 'only cascade-complete');
  assert.deepEqual(byKind.map((e) => e.id), completes);

  // By time: from the minute of the latest status change, then until it.
  await page.getByLabel(/^Kind/).selectOption([]);
  const latest = (await gql('{ events(newestFirst: true, first: 1, kinds: ["status-change"]) { nodes { at } } }')).events.nodes[0].at;
  const { local, iso } = await page.evaluate((at) => {
    const d = new Date(at);
    d.setSeconds(0, 0);
    const pad = (n) => String(n).padStart(2, '0');
    return { local: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`, iso: d.toISOString() };
  }, latest);
  await page.getByLabel('From').fill(local);
  await apply();
  const since = await expected(`since: "${iso}"`);
  const fromThen = await eventually(shown, (r) => r.length === since.length && r.every((e) => Date.parse(e.at) >= Date.parse(iso)), `events since ${iso}`);
  assert.ok(fromThen.length > 0);
  await page.getByLabel('From').fill('');
  await page.getByLabel('Until').fill(local);
  await apply();
  const until = await expected(`until: "${iso}"`);
  await eventually(shown, (r) => r.length === until.length && r.every((e) => Date.parse(e.at) < Date.parse(iso)), `events until ${iso}`);
  if (until.length === 0) await page.getByText('No event matches.').waitFor();
});

const vera = { name: 'vera', password: 'correct-horse-42' };

story('an admin adds a viewer, who logs in and sees their role in the header', async (page) => {
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/admin`);
  const form = page.getByRole('form', { name: 'Add a person' });
  await form.getByLabel('Name').fill(vera.name);
  await form.getByLabel(/^Password/).fill(vera.password);
  await form.getByLabel('Role').selectOption('viewer');
  await form.getByRole('button', { name: 'Add person' }).click();
  await page.locator('[data-user="vera"]').getByText('viewer').waitFor();

  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  await logIn(page, vera);
  await page.getByTestId('user-role').getByText('viewer', { exact: true }).waitFor();
  assert.equal(await page.getByTestId('user-name').textContent(), 'vera');
  assert.equal(await page.getByRole('link', { name: 'Admin' }).count(), 0);
});

story('an admin creates an API token, sees its secret once, and revokes it', async (page) => {
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/admin`);
  const form = page.getByRole('form', { name: 'Create a token' });
  await form.getByLabel('Name').fill('e2e-token');
  await form.getByLabel('Role').selectOption('operator');
  await form.getByRole('button', { name: 'Create token' }).click();
  const secret = (await page.getByTestId('token-secret').textContent()).trim();
  assert.ok(secret.length >= 20, `a secret: ${secret}`);
  const asToken = (token) =>
    fetch(`${lab.api}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ me { name role } }' }),
    }).then((r) => r.json());
  assert.deepEqual((await asToken(secret)).data, { me: { name: 'e2e-token', role: 'operator' } });

  // Once: gone when dismissed, and nowhere after a reload.
  await page.getByRole('button', { name: 'Done' }).click();
  assert.equal(await page.getByTestId('token-secret').count(), 0);
  await page.reload();
  await page.locator('[data-token="e2e-token"]').waitFor();
  assert.equal((await page.content()).includes(secret), false);

  await page.getByRole('button', { name: 'Revoke e2e-token' }).click();
  await page.getByRole('dialog', { name: 'Revoke token e2e-token?' }).getByRole('button', { name: 'Revoke e2e-token' }).click();
  await page.locator('[data-token="e2e-token"]').getByRole('button', { name: 'Revoke e2e-token' }).waitFor({ state: 'detached' });
  assert.notEqual(await page.locator('[data-token="e2e-token"] td').nth(5).textContent(), '—');
  const { tokens } = await gql('{ tokens { name revokedAt } }');
  assert.ok(tokens.find((t) => t.name === 'e2e-token').revokedAt);
  assert.equal((await asToken(secret)).errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
});

test('no request ever left for another host', () => {
  assert.deepEqual(foreign, []);
});
