#!/usr/bin/env node
// The operator's day in the dashboard (/ui), in a real headless Chromium, driven by
// tests/py/test_dashboard_operator.py over stdin/stdout:
//
//   node operator.js <admin-base-url> <global-token> <tenant-token> <screenshot-dir>
//
// As the global admin: finds a mail by subject, opens it, resends it (prints
// {"event": "resent", "delivery_id": …}), sends a test event to an endpoint, edits the
// endpoint and the domains (the API's problems next to the fields), adds a route in
// the form (after seeing the API's validation problem next to the field), moves it above the
// catch-all (prints {"event": "route-moved"}), waits for a line on stdin (the test sends a
// mail to the new route meanwhile), finds that mail and checks its route; then signs in with
// the tenant token and sees that tenant only. A screenshot of each page goes to
// <screenshot-dir>. Prints {"event": "done"} at the end; on failure the reason on stderr and
// exit 1.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.POSTWIRE_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
function check(ok, message) {
  if (!ok) throw new Error(message);
}

const lines = readline.createInterface({ input: process.stdin });
const waiting = [];
lines.on('line', (line) => { const w = waiting.shift(); if (w) w(line); });
const nextLine = () => new Promise((resolve) => waiting.push(resolve));

async function shot(page, dir, name) {
  await page.screenshot({ path: path.join(dir, `operator-${name}.png`), fullPage: true });
}

async function signIn(page, token) {
  await page.getByTestId('token-input').fill(token);
  await page.getByTestId('login-button').click();
  await page.getByTestId('dashboard').waitFor({ state: 'visible' });
}

async function search(page, text) {
  await page.getByTestId('search-input').fill(text);
  await page.getByTestId('search-button').click();
}

// The one delivery row whose subject is `subject` (after a search for it).
async function rowWithSubject(page, subject) {
  const row = page.locator('[data-testid="delivery-row"]', {
    has: page.locator('[data-testid="delivery-subject"]', { hasText: subject }),
  });
  await row.first().waitFor({ state: 'visible' });
  check(await row.count() === 1, `${await row.count()} rows show ${subject}`);
  return row;
}

async function asAdmin(page, dir) {
  // The charts: a fresh instance picks the period that shows its data, ending now.
  await page.waitForFunction(() => document.querySelector('[data-testid="period"]').textContent !== '');
  const period = await page.getByTestId('period').textContent();
  check(/auto: last hour, 1 min buckets/.test(period), `the period is: ${period}`);
  check(/^now \d\d:\d\d$/.test(await page.getByTestId('axis-end').first().textContent()), 'the axis does not end at now');
  await shot(page, dir, 'overview');

  // Find the mail by subject and open it.
  await search(page, 'quarterly');
  const row = await rowWithSubject(page, 'Quarterly invoice 42');
  check((await row.textContent()).includes('ann@example.com'), 'the row does not show the sender');
  const deliveryId = await row.getAttribute('data-delivery-id');
  await row.getByTestId('delivery-open').click();
  const summary = page.getByTestId('detail-summary');
  await page.getByTestId('delivery-detail').waitFor({ state: 'visible' });
  await page.waitForFunction(() => document.querySelector('[data-testid="detail-summary"]').textContent.includes('Quarterly invoice 42'));
  const facts = await summary.textContent();
  check(facts.includes('support@acme.test') && facts.includes('Attachments'), `the details lack the mail: ${facts}`);
  check((await page.getByTestId('detail-payload').textContent()).includes('"subject": "Quarterly invoice 42"'), 'no payload shown');
  await shot(page, dir, 'mail');

  // Resend it: a second attempt, delivered.
  await page.getByTestId('resend-button').click();
  await page.waitForFunction(() => /Attempt \d+: /.test(document.querySelector('[data-testid="resend-outcome"]').textContent),
    null, { timeout: 60000 });
  const resent = await page.getByTestId('resend-outcome').textContent();
  check(/Attempt 2: delivered \(HTTP 204\)/.test(resent), `the resend outcome is: ${resent}`);
  check(await page.getByTestId('detail-attempt').count() === 2, 'the details do not show two attempts');
  emit({ event: 'resent', delivery_id: deliveryId });
  await shot(page, dir, 'resent');

  // A test event to the endpoint, with the receiver's answer and timing.
  const endpoint = page.locator('[data-testid="endpoint-row"][data-tenant="acme"][data-endpoint="hook"]');
  await endpoint.getByTestId('endpoint-test').click();
  const tested = endpoint.getByTestId('endpoint-test-outcome');
  await page.waitForFunction((el) => el.dataset.state === 'done' || el.dataset.state === 'error',
    await tested.elementHandle());
  const testText = await tested.textContent();
  check(/^delivered: HTTP 204 in \d+ ms/.test(testText), `the test event outcome is: ${testText}`);
  emit({ event: 'tested', webhook_id: await tested.getAttribute('data-webhook-id') });
  await shot(page, dir, 'endpoints');

  // Edit the endpoint: a bad URL gets the API's problem next to the field; the secret box
  // stays empty (write-only) and saving without it keeps the stored secret.
  await page.getByTestId('tenant-select').selectOption('acme');
  const hook = page.locator('[data-testid="config-endpoint-row"][data-endpoint="hook"]');
  await hook.getByTestId('endpoint-edit').click();
  const url = await page.getByTestId('ep-url').inputValue();
  check(url.includes('/acme'), `the URL box holds ${url}`);
  check(await page.getByTestId('ep-secret').inputValue() === '', 'the secret is shown');
  await page.getByTestId('ep-url').fill('not a url');
  await page.getByTestId('endpoint-save').click();
  await page.getByTestId('ep-url-error').waitFor({ state: 'visible' });
  await page.getByTestId('ep-url').fill(url);
  await page.getByTestId('ep-rate').fill('5');
  await page.getByTestId('endpoint-save').click();
  await page.locator('[data-testid="config-endpoint-row"][data-endpoint="hook"]', { hasText: '5/s' }).waitFor({ state: 'visible' });
  check(await page.getByTestId('ep-url-error').isHidden(), 'the URL problem stays after a good save');

  // Domains: a bad name is refused next to the field, a good one is added.
  await page.getByTestId('domain-name').fill('not a domain!');
  await page.getByTestId('domain-add').click();
  await page.getByTestId('domain-error').waitFor({ state: 'visible' });
  await page.getByTestId('domain-name').fill('acme-two.test');
  await page.getByTestId('domain-add').click();
  await page.locator('[data-testid="domain-row"][data-domain="acme-two.test"]').waitFor({ state: 'visible' });
  await page.locator('[data-testid="audit-row"]', { hasText: 'put endpoint hook' }).first().waitFor({ state: 'visible' });
  await page.locator('[data-testid="audit-row"]', { hasText: 'add domain acme-two.test' }).first().waitFor({ state: 'visible' });
  await shot(page, dir, 'config');

  // Add a route in the form: first with an endpoint that does not exist (the API's problem
  // shows next to the field), then last, after the catch-all: the API refuses a route the
  // catch-all would always take first, naming it; then placed before the catch-all.
  await page.getByTestId('route-name').fill('sales');
  await page.getByTestId('route-recipients').fill('sales@acme.test');
  await page.getByTestId('route-endpoints').fill('nowhere');
  await page.getByTestId('route-save').click();
  const fieldError = page.getByTestId('route-endpoints-error');
  await fieldError.waitFor({ state: 'visible' });
  check(/nowhere/.test(await fieldError.textContent()), `the field error is: ${await fieldError.textContent()}`);
  await shot(page, dir, 'route-invalid');
  await page.getByTestId('route-endpoints').fill('hook');
  await page.getByTestId('route-save').click();
  const formError = page.getByTestId('route-form-error');
  await formError.waitFor({ state: 'visible' });
  check(/never match/.test(await formError.textContent()) && /catchall/.test(await formError.textContent()),
    `the shadowed route's problem is: ${await formError.textContent()}`);
  await shot(page, dir, 'route-shadowed');
  const order = async () => page.locator('[data-testid="route-row"]').evaluateAll((rows) => rows.map((r) => r.dataset.route));
  check(JSON.stringify(await order()) === '["support","catchall"]', `a refused route was added: ${await order()}`);
  await page.getByTestId('route-place').selectOption('catchall');
  await page.getByTestId('route-save').click();
  const sales = page.locator('[data-testid="route-row"][data-route="sales"]');
  await sales.waitFor({ state: 'visible' });
  check(JSON.stringify(await order()) === '["support","sales","catchall"]', `the order is ${await order()}`);

  // Move it up, above support, then down again: it stays above the catch-all.
  await sales.getByTestId('route-up').click();
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="route-row"]')]
    .map((r) => r.dataset.route).join(',') === 'sales,support,catchall');
  await sales.getByTestId('route-down').click();
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="route-row"]')]
    .map((r) => r.dataset.route).join(',') === 'support,sales,catchall');
  await page.locator('[data-testid="audit-row"]', { hasText: 'put route sales' }).first().waitFor({ state: 'visible' });
  await shot(page, dir, 'routes');
  emit({ event: 'route-moved' });

  // The next mail to sales@ takes the new route.
  await nextLine();
  await page.getByTestId('tenant-select').selectOption('');
  await search(page, 'For sales');
  const salesRow = await rowWithSubject(page, 'For sales');
  const salesText = await salesRow.textContent();
  check(salesText.includes('acme / sales → hook'), `the mail to sales@ took: ${salesText}`);
  await shot(page, dir, 'sales-mail');
}

async function asTenant(page, dir, token) {
  await signIn(page, token);
  const who = await page.getByTestId('whoami').textContent();
  check(who.includes('tenants: acme') && !who.includes('every tenant'), `whoami: ${who}`);
  const options = await page.getByTestId('tenant-select').locator('option').evaluateAll((os) => os.map((o) => o.value));
  check(JSON.stringify(options) === '["acme"]', `the tenant token can pick ${options}`);
  check(await page.getByTestId('ep-rate').inputValue() === '' && await page.getByTestId('routes-outcome').textContent() === '',
    'the editors keep what the previous session typed');
  await page.locator('[data-testid="delivery-row"]').first().waitFor({ state: 'visible' });
  const tenants = await page.locator('[data-testid="delivery-row"]').evaluateAll((rows) => rows.map((r) => r.textContent));
  check(tenants.every((t) => t.includes('acme /') && !t.includes('beta')), `the tenant sees: ${tenants}`);
  await search(page, 'for beta');
  await page.getByTestId('deliveries-empty').waitFor({ state: 'visible' });
  const endpoints = await page.locator('[data-testid="endpoint-row"]').evaluateAll((rows) => rows.map((r) => r.dataset.tenant));
  check(endpoints.length > 0 && endpoints.every((t) => t === 'acme'), `the tenant sees endpoints of ${endpoints}`);
  await page.getByTestId('route-row').first().waitFor({ state: 'visible' });
  await shot(page, dir, 'tenant');
}

async function run(base, adminToken, tenantToken, dir) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'postwire-chromium-'));
  const origin = new URL(base).origin;
  const problems = [];
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 },
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(20000);
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // The invalid route is an expected 422 in the console.
      if (m.type() === 'error' && !/422/.test(m.text())) problems.push(`console error: ${m.text()}`);
    });
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(`${origin}/`)) return route.continue();
      problems.push(`request to another origin: ${url}`);
      return route.abort();
    });
    await page.goto(`${base}/ui`);
    await signIn(page, adminToken);
    check(/every tenant/.test(await page.getByTestId('whoami').textContent()), 'not signed in as the global admin');
    await asAdmin(page, dir);
    await page.getByTestId('logout-button').click();
    await page.getByTestId('token-input').waitFor({ state: 'visible' });
    await asTenant(page, dir, tenantToken);
    check(problems.length === 0, problems.join('\n'));
    emit({ event: 'done' });
  } catch (err) {
    for (const page of context.pages()) {
      await page.screenshot({ path: path.join(dir, 'operator-failed.png'), fullPage: true }).catch(() => {});
    }
    err.message += problems.length ? `\n${problems.join('\n')}` : '';
    throw err;
  } finally {
    lines.close();
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

const [base, adminToken, tenantToken, dir] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: node operator.js <admin-base-url> <global-token> <tenant-token> <screenshot-dir>\n');
  process.exit(2);
}
run(base.replace(/\/$/, ''), adminToken, tenantToken, path.resolve(dir)).then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`operator: ${err.stack || err}\n`);
    process.exit(1);
  },
);
