// End-to-end: the wake-on-request proxy in Debian's Chromium. A real `wakehub serve --demo
// --proxy-listen` fronts a service (a Node HTTP server) on a node that is off: the browser
// gets the waiting page, sees the cascade's steps go by live, and lands on the service when
// it is up; the waiting page passes axe-core. (`*.localhost` resolves to loopback in
// Chromium, so the route's host name needs no DNS.)

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { axeSource, gql, lab, logIn, newPage, shots, useLab } from './harness.mjs';

/** A free loopback port (bound, read, released). */
function freePort() {
  return new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

const upstream = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end('<!doctype html><html lang="en"><title>Media</title><main><h1>Welcome to the media server</h1></main></html>');
});
const proxyPort = await freePort();
useLab({ args: ['--proxy-listen', `127.0.0.1:${proxyPort}`] });

/** The node `media` behind the proxy, off, in front of the upstream. */
async function createMedia() {
  await new Promise((ok) => upstream.listen(0, '127.0.0.1', ok));
  const input = {
    name: 'media', kind: 'lxc', parent: 'machine2', dependsOn: ['nas'],
    connector: { type: 'sim', start_delay_ms: 1500, stop_delay_ms: 200 },
    proxy: { hosts: ['media.localhost'], upstream: `http://127.0.0.1:${upstream.address().port}` },
  };
  await gql('mutation($i: NodeInput!) { createNode(input: $i) { id } }', { i: input });
}
after(() => upstream.close());

test('a browser waits on the page, sees each step, and lands on the service', async () => {
  await createMedia();
  const context = await lab.browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  const response = await page.goto(`http://media.localhost:${proxyPort}/`);
  assert.equal(response.status(), 503);
  assert.ok(Number(response.headers()['retry-after']) >= 1);
  await page.getByRole('heading', { name: 'Starting media…' }).waitFor();
  // The cascade's steps, live: the host and the NAS it needs, then the service.
  const steps = page.locator('#steps li');
  await page.locator('#steps li[data-status="running"]').first().waitFor();
  await page.screenshot({ path: resolve(shots, 'proxy-waiting.png') });
  const seen = await steps.allTextContents();
  assert.ok(seen.some((s) => s.startsWith('start machine2')) && seen.some((s) => s.startsWith('start media')), String(seen));

  // Once up, the page opens the service itself.
  await page.getByRole('heading', { name: 'Welcome to the media server' }).waitFor({ timeout: 30_000 });
  assert.equal(new URL(page.url()).host, `media.localhost:${proxyPort}`);
  await context.close();
});

test("the node's page says how the proxy fronts it", async () => {
  const page = await newPage();
  await logIn(page, lab.admin);
  await page.goto(`${lab.origin}/#/node/media`);
  await page.getByTestId('fronted').getByText(`media.localhost/ → http://127.0.0.1:${upstream.address().port}`).waitFor();
  await page.context().close();
});

test('the waiting page passes an accessibility check (axe-core)', async () => {
  await gql('mutation { stopNode(id: "media") { id } }');
  for (let i = 0; i < 100; i++) {
    const d = await gql('{ node(id: "media") { status } }');
    if (d.node.status === 'OFF') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const context = await lab.browser.newContext();
  const page = await context.newPage();
  await page.goto(`http://media.localhost:${proxyPort}/`);
  await page.getByRole('heading', { name: 'Starting media…' }).waitFor();
  await page.evaluate(axeSource);
  // eslint-disable-next-line no-undef
  const result = await page.evaluate(() => axe.run(document, { resultTypes: ['violations'] }));
  const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
  assert.deepEqual(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), []);
  await context.close();
});
