/**
 * The gateway page in a real browser (Debian's chromium through playwright-core) against a real
 * service and three real node processes: a wrong token's error; sign in; the gateways list; the
 * nodes table with every column (and the advanced ones); set a limit (with the keyboard); drain and
 * resume; add a node by running the exact command the page shows, then delete it (confirmed); a
 * reader's refused action showing the service's error; kill the dispatcher's process and watch it
 * turn Offline (no stale figures) and the dispatcher move, with the reason; regenerate a key;
 * phone width in dark mode. Screenshots go to test-artifacts/portal/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_TOKEN, Proc, eventually, tempDir, track } from './helpers/cluster.ts';
import { gatewayWithNodes, nodesView } from './helpers/scenario.ts';
import { openBrowser, signIn } from './helpers/browser.ts';

test('portal: the gateway page, live, with every node action', async (t) => {
  const g = await gatewayWithNodes(t, 3);
  const api = g.svc.api;
  const { page, shot } = await openBrowser(t);
  const row = (name: string) => page.locator(`#nodes tr[data-node="${name}"]`);
  const cell = (name: string, col: string) => row(name).locator(`[data-col="${col}"]`);

  // A wrong token: the service's refusal, and no way in.
  await signIn(page, g.svc.url, 'not-a-valid-token-0000');
  await page.getByRole('alert').filter({ hasText: 'Cannot sign in' }).waitFor();
  assert.match(await page.getByRole('alert').innerText(), /invalid token/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('ferry.token')), null);
  await shot('sign-in-wrong-token');

  // Signed in: the gateways list with status, version and node count.
  await page.getByLabel('API token').fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const gwRow = page.locator(`#gateways tr[data-gateway="${g.gateway}"]`);
  await gwRow.waitFor();
  const gwText = await gwRow.innerText();
  assert.match(gwText, /Online/);
  assert.match(gwText, /0\.1\.0/);
  assert.match(gwText, /\b3\b/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('ferry.token')), ADMIN_TOKEN);
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'the token is in the session only');

  // The gateway page: three nodes, every column of the seed's table.
  await gwRow.getByRole('link', { name: g.gateway }).click();
  await row('node-3').waitFor();
  const listed = (await nodesView(g)).nodes as any[];
  for (const n of listed) {
    assert.match(await cell(n.name, 'status').innerText(), /Online/);
    assert.equal(await cell(n.name, 'version').innerText(), n.version);
    assert.match(await cell(n.name, 'memory').innerText(), /\d+(\.\d)? [KMGT]iB of \d/);
    assert.match(await cell(n.name, 'cpu').innerText(), /^\d+\.\d%$/);
    assert.match(await cell(n.name, 'jobs').innerText(), new RegExp(`^0 / ${n.jobsLimit}`));
    assert.equal(await cell(n.name, 'role').innerText(), n.role);
  }
  const dispatcher = listed.find((n) => n.role === 'dispatcher').name as string;
  assert.match(await page.locator('#dispatcher').innerText(), new RegExp(dispatcher));
  await page.getByLabel('Advanced columns').check();
  for (const n of listed) {
    assert.match(await cell(n.name, 'network-in').innerText(), /B\/s$/);
    assert.match(await cell(n.name, 'network-out').innerText(), /B\/s$/);
    // The node's credential status when the service reports one (issue 18), else "-".
    assert.equal(await cell(n.name, 'credentials').innerText(), n.credentials?.status ?? '-');
    // Attempts handed to it not started yet (none: the gateway is idle).
    assert.equal(await cell(n.name, 'queue').innerText(), String(n.queue));
    assert.match(await cell(n.name, 'heartbeat').innerText(), /now|s ago/);
  }
  assert.equal(await page.locator('#queue').innerText(), 'no task waiting');
  await shot('gateway-three-nodes-advanced');

  // Set a limit, with the keyboard only: focus the button, Enter, type, Enter.
  await row('node-2').getByRole('button', { name: 'Set the limit of node-2' }).focus();
  await page.keyboard.press('Enter');
  await page.getByLabel('New limit').waitFor();
  await page.keyboard.type('3');
  await page.keyboard.press('Enter');
  await eventually('node-2 limit 3 on the page', async () =>
    /^\d+ \/ 3 \(set\)/.test(await cell('node-2', 'jobs').innerText()),
  );
  const n2 = (await nodesView(g)).nodes.find((n: any) => n.name === 'node-2');
  assert.equal(n2.jobsLimit, 3);
  assert.equal(n2.limitIsDefault, false);

  // Drain and resume.
  await row('node-3').getByRole('button', { name: 'Drain node-3' }).click();
  await eventually('node-3 drained on the page', async () =>
    /drained|draining/.test(await cell('node-3', 'status').innerText()),
  );
  assert.notEqual((await nodesView(g)).nodes.find((n: any) => n.name === 'node-3').drain, null);
  await shot('gateway-node-drained');
  await row('node-3').getByRole('button', { name: 'Resume node-3' }).click();
  await row('node-3').getByRole('button', { name: 'Drain node-3' }).waitFor();
  assert.equal((await nodesView(g)).nodes.find((n: any) => n.name === 'node-3').drain, null);

  // Add a node: the page shows the key and the exact command; running it joins the node.
  const keys = await api.call('GET', `/api/v1/gateways/${g.gateway}/keys`);
  await page.getByRole('button', { name: 'Add a node' }).click();
  await page.getByLabel(/Name of the new node/).fill('node-4');
  assert.equal(await page.locator('#new-node-key').innerText(), keys.key1);
  const command = await page.locator('#new-node-command').innerText();
  assert.equal(command, `ferry node --service ${g.svc.url} --key ${keys.key1} --name node-4`);
  await shot('gateway-add-node');
  const [ferry, ...args] = command.split(' ');
  assert.equal(ferry, 'ferry');
  const dir = tempDir(t, 'ferry-node-4-');
  const node4 = track(
    t,
    new Proc(
      'node-4',
      [...args, '--port', '0', '--listen', '127.0.0.1', '--advertise', '127.0.0.1', '--data-dir', dir],
      {},
      dir,
    ),
  );
  await node4.waitFor(/running \(node-to-node port \d+\)/);
  await page.getByRole('status').filter({ hasText: 'node-4 has joined the gateway' }).waitFor();
  await page.getByRole('button', { name: 'Done' }).click();
  await row('node-4').waitFor();

  // Delete it: Cancel keeps it; confirming removes it.
  await row('node-4').getByRole('button', { name: 'Delete node-4' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await nodesView(g)).nodes.length, 4);
  await row('node-4').getByRole('button', { name: 'Delete node-4' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete the node' }).click();
  await row('node-4').waitFor({ state: 'detached' });
  assert.deepEqual(
    (await nodesView(g)).nodes.map((n: any) => n.name),
    ['node-1', 'node-2', 'node-3'],
  );
  node4.kill();

  // Regenerate key2 (confirmed): the page shows the new keys, which the service now holds.
  await page.getByRole('button', { name: 'Regenerate key2' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Regenerate key2' }).click();
  await page.locator('#new-keys').waitFor();
  const after = await api.call('GET', `/api/v1/gateways/${g.gateway}/keys`);
  assert.notEqual(after.key2, keys.key2);
  assert.equal(after.key1, keys.key1);
  assert.match(await page.locator('#new-keys').innerText(), new RegExp(after.key2));

  // Kill the dispatcher's process: its row turns Offline with no figures, the dispatcher moves,
  // and the page says why (the gateway's reason and the dispatcher_changed event).
  const victim = g.nodes.find((n) => n.name === dispatcher);
  assert.ok(victim);
  process.kill(victim.proc.pid, 'SIGKILL');
  await eventually(
    'the killed node Offline on the page',
    async () => (await row(dispatcher).getAttribute('data-status')) === 'Offline',
    30_000,
  );
  for (const col of ['cpu', 'memory', 'network-in', 'network-out'])
    assert.equal(await cell(dispatcher, col).innerText(), '-', `${col} of an Offline node`);
  assert.match(await cell(dispatcher, 'jobs').innerText(), /^- \/ \d+/);
  const moved = await eventually(
    'the dispatcher to move',
    async () => {
      const gw = (await nodesView(g)).gateway;
      return gw.dispatcher !== dispatcher && gw.dispatcher !== null ? gw : undefined;
    },
    30_000,
  );
  await eventually('the new dispatcher on the page', async () =>
    (await page.locator('#dispatcher').innerText()).includes(moved.dispatcher),
  );
  assert.match(await page.locator('#dispatcher').innerText(), new RegExp(`epoch ${moved.epoch}`));
  assert.ok(moved.dispatcherReason);
  assert.ok((await page.locator('#dispatcher').innerText()).includes(moved.dispatcherReason));
  await page.getByLabel('Dispatcher changes only').check();
  const change = page
    .locator('#events li.dispatcher-change')
    .filter({ hasText: `${dispatcher} -> ${moved.dispatcher}` });
  await change.first().waitFor();
  const events = (await api.call('GET', `/api/v1/gateways/${g.gateway}/events`)).events as any[];
  const ev = events.find((e) => e.kind === 'dispatcher_changed' && e.message.includes(`${dispatcher} -> `));
  assert.ok(ev);
  assert.equal(await change.first().locator('.message').innerText(), ev.message);
  await shot('gateway-dispatcher-killed');

  // The scale advice the service computes, shown on the gateway page (it refreshes every 10 s).
  await eventually(
    'the page to show the advice the API gives',
    async () => {
      const advice = (await api.call('GET', `/api/v1/gateways/${g.gateway}/advice?window=1h`))
        .advice as any[];
      const shown = await page.locator('#advice ul.advice > li > strong').allInnerTexts();
      return advice.length > 0 && advice.every((x) => shown.includes(x.title)) ? true : undefined;
    },
    30_000,
  );

  // The node's own page: its four charts, from the metrics history.
  await row(moved.dispatcher).getByRole('link', { name: moved.dispatcher }).click();
  await page.locator('#node-facts').waitFor();
  await page.locator('#charts').waitFor();
  assert.equal(await page.locator('#charts figure').count(), 4, 'CPU, memory, network and jobs');
  await shot('node-page');

  // A reader may look but not act: the service's refusal shows on the page.
  const reader = await api.call('POST', '/api/v1/tokens', { name: 'portal-reader', role: 'reader' });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(page, `${g.svc.url}/gateways/${g.gateway}`, reader.token);
  await row('node-1').getByRole('button', { name: 'Drain node-1' }).click();
  const refusal = page.getByRole('alert').filter({ hasText: 'Cannot drain node-1' });
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /operator|admin|role/i);
  assert.equal((await nodesView(g)).nodes.find((n: any) => n.name === 'node-1').drain, null);
  await page.getByRole('button', { name: 'Add a node' }).click();
  await page.getByRole('alert').filter({ hasText: "Cannot read the gateway's keys" }).waitFor();
  await shot('gateway-reader-refused');
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'hidden' });
});

test('portal: phone width, dark mode: the page fits the screen and tables scroll inside it', async (t) => {
  const g = await gatewayWithNodes(t, 1);
  const { page, shot } = await openBrowser(t, { width: 390, height: 844, colorScheme: 'dark' });
  await signIn(page, `${g.svc.url}/gateways/${g.gateway}`, ADMIN_TOKEN);
  await page.locator('#nodes tr[data-node="node-1"]').waitFor();
  await page.getByLabel('Advanced columns').check();
  // Evaluated in the page (a string: this file is type-checked without the DOM's types).
  const fit: { page: number; screen: number; bg: string } = await page.evaluate(
    '({ page: document.documentElement.scrollWidth, screen: window.innerWidth, bg: getComputedStyle(document.body).backgroundColor })',
  );
  assert.ok(fit.page <= fit.screen, `the page is ${fit.page}px wide on a ${fit.screen}px screen`);
  assert.equal(fit.bg, 'rgb(13, 17, 23)', 'dark background');
  await shot('gateway-phone-dark');
});
