// The console in a real browser (Debian's headless Chromium driven by playwright-core), against
// a real flovyn-server and PostgreSQL: sign up, the tenant appears on the server, a worker token
// made in the console runs a worker, workflows started from the console complete and show their
// timeline, a waiting promise is resolved from the page, the token is revoked and the worker
// refused, the server being down shows a plain message, sign out.
//
// Usage: node console_test.mjs  (environment: FLOVYN_TEST_SERVICES, FLOVYN_SERVER_BINARY,
// FLOVYN_APP_BINARY, FLOVYN_WORKER_BINARY, FLOVYN_ARTIFACTS)
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = process.env;
const artifacts = env.FLOVYN_ARTIFACTS || path.resolve('test-artifacts');
fs.mkdirSync(artifacts, { recursive: true });
const pgPort = fs.readFileSync(path.join(env.FLOVYN_TEST_SERVICES, 'pg_port'), 'utf8').trim();
const ADMIN_KEY = 'browser-admin-key-0123456789';
const children = [];
let passed = 0;
let failed = 0;

function psql(sql) {
  execFileSync('psql', ['-h', '127.0.0.1', '-p', pgPort, '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', sql]);
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function start(name, binary, extraEnv) {
  const log = fs.openSync(path.join(artifacts, `${name}.log`), 'w');
  const child = spawn(binary, [], { env: { ...env, ...extraEnv }, stdio: ['ignore', log, log] });
  children.push(child);
  child.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  Object.defineProperty(child, 'output', {
    get: () => fs.readFileSync(path.join(artifacts, `${name}.log`), 'utf8').split('\n').slice(-40).join('\n'),
  });
  return child;
}

function startWorker(grpcPort, token) {
  const child = spawn(env.FLOVYN_WORKER_BINARY, [], {
    env: { ...env, FLOVYN_GRPC_TARGET: `127.0.0.1:${grpcPort}`, FLOVYN_WORKER_TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  child.output = '';
  child.stdout.on('data', (d) => { child.output += d; });
  child.stderr.on('data', (d) => { child.output += d; });
  child.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return child;
}

// The exit code of a child (a worker, the server), or, when it has not exited within the time,
// an error carrying what it printed last and the stacks of its threads (so a hang says where).
async function exitOf(child, timeoutMs = 20000) {
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve('late'), timeoutMs); });
  const code = await Promise.race([child.exited, late]);
  clearTimeout(timer);
  if (code !== 'late') return code;
  let stacks = '';
  try {
    stacks = execFileSync('gdb', ['-p', String(child.pid), '-batch', '-ex', 'thread apply all bt'],
      { encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) { stacks = `(no stacks: ${e.message})`; }
  throw new Error(`process ${child.pid} did not exit within ${timeoutMs} ms\noutput:\n${child.output}\nstacks:\n${stacks}`);
}

async function until(what, fn, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try { if (await fn()) return; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

// Each step has a bound of its own, so a hang fails the step that hung, by name, instead of
// the whole test running into CTest's timeout.
const STEP_TIMEOUT_MS = 90000;
async function step(name, fn) {
  let timer;
  try {
    await Promise.race([fn(), new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`step still running after ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
    })]);
    clearTimeout(timer);
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    clearTimeout(timer);
    failed++;
    console.log(`FAIL ${name}\n     ${e.stack || e}`);
    throw e;
  }
}

const suffix = `${process.pid}_${Date.now()}`;
psql(`CREATE DATABASE browser_srv_${suffix}`);
psql(`CREATE DATABASE browser_app_${suffix}`);
const [httpPort, grpcPort, appPort] = [await freePort(), await freePort(), await freePort()];
const appUrl = `http://127.0.0.1:${appPort}`;
const serverEnv = {
  DATABASE_URL: `postgres://postgres@127.0.0.1:${pgPort}/browser_srv_${suffix}`,
  SERVER_PORT: String(httpPort), GRPC_SERVER_PORT: String(grpcPort), BIND_ADDRESS: '127.0.0.1',
  WORKER_TOKEN_SECRET: 'browser-test-worker-token-secret-0123456789', RUST_LOG: 'info',
  AUTH__STATIC_API_KEY__KEYS: JSON.stringify([{ key: ADMIN_KEY, org_id: '*', principal_type: 'admin', principal_id: 'browser-test', role: 'admin' }]),
  AUTH__JWT__JWKS_URI: `${appUrl}/.well-known/jwks.json`, AUTH__JWT__ISSUER: appUrl,
  AUTH__API_KEY__VALIDATE_URL: `${appUrl}/api/auth/validate-key`,
};
const server = start('server', env.FLOVYN_SERVER_BINARY, serverEnv);
start('app', env.FLOVYN_APP_BINARY, {
  DATABASE_URL: `postgres://postgres@127.0.0.1:${pgPort}/browser_app_${suffix}`,
  BACKEND_URL: `http://127.0.0.1:${httpPort}`, BETTER_AUTH_SECRET: 'browser-test-secret-0123456789abcdef',
  NEXT_PUBLIC_APP_URL: appUrl, PORT: String(appPort), BIND_ADDRESS: '127.0.0.1', NODE_ENV: 'development',
  RUST_LOG: 'info',
});

let browser;
let code = 1;
try {
  await until('the server and the console to be ready', async () =>
    (await fetch(`${appUrl}/api/health/ready`)).status === 200);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(20000);
  context.setDefaultNavigationTimeout(20000);
  const page = await context.newPage();
  page.on('dialog', (d) => d.accept());
  let worker;
  let token;
  let detailUrl;

  await step('sign-up cannot take over a tenant an admin made on the server', async () => {
    const made = await fetch(`http://127.0.0.1:${httpPort}/api/tenants`, {
      method: 'POST', headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ slug: 'taken-org', name: 'Taken' }),
    });
    assert.equal(made.status, 201);
    const started = await fetch(`http://127.0.0.1:${httpPort}/api/tenants/taken-org/workflows`, {
      method: 'POST', headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kind: 'secret-kind', input: { card: '4111' } }),
    });
    assert.equal(started.status, 201);
    const intruder = await context.newPage();
    await intruder.goto(`${appUrl}/sign-up`);
    await intruder.fill('input[name=name]', 'Mallory');
    await intruder.fill('input[name=email]', 'mallory@example.com');
    await intruder.fill('input[name=password]', 'correct-horse-mallory');
    await intruder.fill('input[name=organization]', 'Taken');
    await intruder.fill('input[name=slug]', 'taken-org');
    await intruder.click('button[type=submit]');
    await intruder.waitForLoadState();
    assert.match(await intruder.content(), /is taken on the Flovyn server/);
    assert.doesNotMatch(intruder.url(), /\/overview$/);
    await intruder.screenshot({ path: `${artifacts}/sign-up-slug-taken.png` });
    // No account was made: signing in as the intruder fails, and no page shows the tenant's work.
    await intruder.goto(`${appUrl}/workflows`);
    assert.match(intruder.url(), /\/sign-in$/);
    await intruder.fill('input[name=email]', 'mallory@example.com');
    await intruder.fill('input[name=password]', 'correct-horse-mallory');
    await intruder.click('button[type=submit]');
    await intruder.waitForLoadState();
    assert.match(await intruder.content(), /wrong email or password/);
    assert.ok(!(await intruder.content()).includes('secret-kind'));
    await intruder.close();
  });

  await step('sign up creates the account and the organisation', async () => {
    await page.goto(`${appUrl}/`);
    assert.match(page.url(), /\/sign-in$/);
    await page.click('text=Create one');
    await page.fill('input[name=name]', 'Ada Lovelace');
    await page.fill('input[name=email]', 'ada@example.com');
    await page.fill('input[name=password]', 'correct-horse-battery');
    await page.fill('input[name=organization]', 'Browser Org');
    await page.fill('input[name=slug]', 'browser-org');
    await page.click('button[type=submit]');
    await page.waitForURL(/\/overview$/);
    assert.equal(await page.textContent('h1'), 'Overview');
  });

  await step("the organisation's tenant exists on the server", async () => {
    const r = await fetch(`http://127.0.0.1:${httpPort}/api/tenants/browser-org`, { headers: { Authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).slug, 'browser-org');
  });

  await step('a worker token is created and shown once', async () => {
    await page.click('nav >> text=Worker tokens');
    await page.fill('#create-token input[name=name]', 'browser-worker');
    await page.click('#create-token button[type=submit]');
    token = (await page.textContent('#new-secret')).trim();
    assert.match(token, /^fwt_[A-Za-z0-9_-]{40,}$/);
    await page.goto(`${appUrl}/worker-tokens`);
    assert.equal(await page.locator('#new-secret').count(), 0);
    assert.ok(!(await page.content()).includes(token));
  });

  await step('a worker runs with the token and is listed', async () => {
    worker = startWorker(grpcPort, token);
    await until('the worker to register', () => worker.output.includes('registered'));
    await page.goto(`${appUrl}/workers`);
    assert.match(await page.textContent('table.list'), /greeter/);
  });

  await step('a workflow started from the console completes and its detail shows the timeline', async () => {
    await page.goto(`${appUrl}/workflows`);
    await page.fill('#start-workflow input[name=kind]', 'greet');
    await page.fill('#start-workflow textarea[name=input]', '{"name": "ada"}');
    await page.click('#start-workflow button[type=submit]');
    await page.waitForURL(/\/workflows\/[0-9a-f-]{36}$/);
    await until('the workflow to complete', async () => {
      await page.reload();
      return (await page.textContent('h1')).includes('COMPLETED');
    });
    const timeline = await page.textContent('#timeline');
    for (const type of ['TASK_SCHEDULED', 'TASK_COMPLETED', 'WORKFLOW_COMPLETED']) assert.ok(timeline.includes(type), type);
    assert.match(await page.textContent('.io'), /HELLO, ADA!/);
    assert.match(await page.textContent('.io'), /"name": "ada"/);
    detailUrl = page.url();
  });

  await step('the tasks page lists the task the workflow ran', async () => {
    await page.click('nav >> text=Tasks');
    const rows = await page.textContent('table.list tbody');
    assert.match(rows, /shout/);
    assert.match(rows, /COMPLETED/);
  });

  await step('screenshots of the workflow detail page at desktop and phone width', async () => {
    await page.goto(detailUrl);
    await page.screenshot({ path: path.join(artifacts, 'workflow-detail-desktop.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    await page.screenshot({ path: path.join(artifacts, 'workflow-detail-phone.png'), fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `the page scrolls sideways at phone width by ${overflow}px`);
    await page.setViewportSize({ width: 1280, height: 900 });
    for (const f of ['workflow-detail-desktop.png', 'workflow-detail-phone.png']) {
      assert.ok(fs.statSync(path.join(artifacts, f)).size > 10000, f);
    }
  });

  await step('every page is usable at phone width (no sideways scrolling)', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const p of ['/overview', '/workflows', '/tasks', '/schedules', '/eventhooks', '/workers', '/worker-tokens', '/api-keys']) {
      await page.goto(`${appUrl}${p}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${p} scrolls sideways at phone width by ${overflow}px`);
      await page.screenshot({ path: path.join(artifacts, `phone${p.replace('/', '-')}.png`), fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await step('a waiting promise is resolved from the workflow page', async () => {
    await page.goto(`${appUrl}/workflows`);
    await page.fill('#start-workflow input[name=kind]', 'approval');
    await page.click('#start-workflow button[type=submit]');
    await page.waitForURL(/\/workflows\/[0-9a-f-]{36}$/);
    await until('the promise form', async () => {
      await page.reload();
      return (await page.locator('section.promise').count()) === 1;
    });
    await page.fill('section.promise textarea[name=value]', '{"by": "ada"}');
    await page.click('section.promise button[type=submit]');
    await until('the approval to complete', async () => {
      await page.reload();
      return (await page.textContent('h1')).includes('COMPLETED');
    });
    assert.match(await page.textContent('#timeline'), /PROMISE_RESOLVED/);
  });

  await step('the overview counts workflows by status', async () => {
    await page.click('nav >> text=Overview');
    assert.equal(await page.textContent('[data-status=COMPLETED]'), '2');
    await page.click('a.card[href="/workflows?status=COMPLETED"]');
    assert.equal(await page.locator('table.list tbody tr').count(), 2);
  });

  const api = (method, p, body) => fetch(`http://127.0.0.1:${httpPort}/api/tenants/browser-org${p}`, {
    method, headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

  await step('a schedule shows its next five fire times and is paused, triggered and resumed', async () => {
    const made = await api('POST', '/schedules', {
      name: 'nightly', cron: '30 2 * * *', timezone: 'Europe/Berlin', workflow: { kind: 'report' },
    });
    assert.equal(made.status, 201);
    await page.click('nav >> text=Schedules');
    const row = page.locator('#schedules tr[data-name=nightly]');
    assert.match(await row.textContent(), /30 2 \* \* \* \(Europe\/Berlin\)/);
    await row.locator('a', { hasText: 'nightly' }).click();
    assert.equal(await page.locator('#next-fires li').count(), 5);
    for (const t of await page.locator('#next-fires li').allTextContents()) assert.match(t, /T0[01]:30:00/);
    await page.click('button:has-text("Pause")');
    await page.waitForSelector('h1 .badge:has-text("paused")');
    await page.click('button:has-text("Trigger now")');
    await until('the manual run', async () => (await page.textContent('#runs')).includes('manual'));
    assert.match(await page.textContent('#runs'), /started/);
    await page.click('button:has-text("Resume")');
    await until('the schedule to be running again', async () => (await page.locator('h1 .badge').count()) === 0);
  });

  await step('an event hook delivery is listed with its outcome and reprocessed from the console', async () => {
    const source = await (await api('POST', '/eventhook/sources', { slug: 'forms', verifier: { type: 'none' } })).json();
    const route = await api('POST', '/eventhook/routes', {
      sourceId: source.id, name: 'to-workflow', action: { type: 'start_workflow', kind: 'from-form' },
    });
    assert.equal(route.status, 201);
    const delivered = await fetch(`http://127.0.0.1:${httpPort}${source.ingestPath}`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"field": 1}',
    });
    assert.equal(delivered.status, 202);
    const { id } = await delivered.json();
    await page.click('nav >> text=Event hooks');
    assert.match(await page.textContent('#sources'), /forms/);
    assert.match(await page.textContent('#routes'), /to-workflow/);
    await until('the event to be processed', async () => {
      await page.reload();
      return (await page.textContent(`#events tr[data-id="${id}"]`)).includes('DONE');
    });
    assert.match(await page.textContent(`#events tr[data-id="${id}"]`), /to-workflow: start_workflow/);
    await page.click(`#events tr[data-id="${id}"] button:has-text("Reprocess")`);
    await until('the reprocessed event to be done again', async () => {
      await page.reload();
      return (await page.textContent(`#events tr[data-id="${id}"]`)).includes('DONE');
    });
    const events = await (await api('GET', `/eventhook/events/${id}`)).json();
    assert.equal(events.status, 'DONE');
  });

  await step('a running workflow page follows new events live, and search finds workflows by attribute', async () => {
    const started = await (await api('POST', '/workflows', { kind: 'live-demo', queue: 'nobody-polls' })).json();
    await page.goto(`${appUrl}/workflows/${started.id}`);
    assert.match(await page.textContent('#timeline'), /WORKFLOW_STARTED/);
    await page.evaluate(() => { window.notReloaded = true; });
    assert.equal((await api('POST', `/workflows/${started.id}/signals`, { name: 'nudge', payload: { n: 1 } })).status, 202);
    await page.waitForSelector('#timeline >> text=SIGNAL_RECEIVED', { timeout: 10000 });
    assert.equal(await page.evaluate(() => window.notReloaded), true, 'the event arrived without a reload');
    assert.equal((await api('POST', `/workflows/${started.id}/search-attributes`,
      { attributes: { customer: 'c-browser', amount: 42 } })).status, 200);
    await page.goto(`${appUrl}/workflows`);
    await page.fill('input[name=q]', 'customer = "c-browser" AND amount > 40');
    await page.click('form.filters button[type=submit]');
    assert.equal(await page.locator('table.list tbody tr').count(), 1);
    assert.match(await page.textContent('table.list tbody'), new RegExp(started.id.slice(0, 8)));
    await page.fill('input[name=q]', 'customer =');
    await page.click('form.filters button[type=submit]');
    assert.match(await page.textContent('#search-error'), /expected a value after '='/);
    assert.equal(await page.inputValue('input[name=q]'), 'customer =');
    // Finishing the workflow ends the stream and the page shows the final status by itself.
    await page.goto(`${appUrl}/workflows/${started.id}`);
    assert.equal((await api('POST', `/workflows/${started.id}/cancel`)).status, 202);
    await until('the page to show CANCELLED', async () => (await page.textContent('h1')).includes('CANCELLED'));
    assert.match(await page.textContent('#timeline'), /WORKFLOW_CANCELLED/);
  });

  await step('revoking the token refuses the worker', async () => {
    await page.goto(`${appUrl}/worker-tokens`);
    await page.click('tr[data-name="browser-worker"] button:has-text("Revoke")');
    await page.waitForURL(/\/worker-tokens$/);
    assert.match(await page.textContent('tr[data-name="browser-worker"]'), /revoked/);
    worker.kill('SIGTERM');
    assert.equal(await exitOf(worker), 0);
    const again = startWorker(grpcPort, token);
    assert.equal(await exitOf(again), 3, again.output);
    assert.match(again.output, /refused: 16/);
  });

  await step('with the server down the console says so plainly', async () => {
    server.kill('SIGTERM');
    assert.equal(await exitOf(server, 30000), 0);
    const r = await page.goto(`${appUrl}/workflows`);
    assert.equal(r.status(), 503);
    assert.match(await page.textContent('#backend-down'), /cannot be reached/);
    assert.ok(!(await page.content()).match(/exception|std::|stack/i));
    await page.screenshot({ path: path.join(artifacts, 'server-unreachable.png') });
  });

  await step('sign out ends the session', async () => {
    await page.click('#sign-out');
    await page.waitForURL(/\/sign-in$/);
    await page.goto(`${appUrl}/overview`);
    assert.match(page.url(), /\/sign-in$/);
  });
  code = 0;
} catch (e) {
  if (failed === 0) { failed++; console.log(`FAIL setup\n     ${e.stack || e}`); }
} finally {
  if (browser) await browser.close();
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  console.log(`${passed} passed, ${failed} failed (artefacts in ${artifacts})`);
  process.exit(code);
}
