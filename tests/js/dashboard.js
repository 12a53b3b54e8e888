#!/usr/bin/env node
// The dashboard (/ui) in a real headless Chromium, driven by tests/py/test_dashboard.py.
//
//   node dashboard.js <admin-base-url> <token> <delivery-id> <screenshot.png>
//
// Opens /ui, checks that a wrong token shows the API's error and no data, signs in, finds the
// dead letter of <delivery-id> in the DLQ list and its details, then prints
//   {"event": "dlq-seen", ...}
// and waits for a line on stdin (the test makes the receiver answer 2xx meanwhile), presses
// Replay, waits until the dashboard reports the delivery delivered, saves a full-page
// screenshot, signs out and prints {"event": "done", "screenshot": ...}. On failure it prints
// the reason on stderr (and saves <screenshot>-failed.png) and exits 1.
//
// Chromium is Debian's (/usr/bin/chromium, from scripts/tools.sh); playwright-core comes from
// $NODE_PATH ($POSTWIRE_TOOLS/node/node_modules). Requests to any other origin are refused.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.POSTWIRE_CHROMIUM || '/usr/bin/chromium';
// Without the background-networking flags Chromium tries to reach Google's services, which a
// closed network refuses noisily.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WRONG_TOKEN = 'not-the-admin-token-0000';

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function check(ok, message) {
  if (!ok) throw new Error(message);
}

// The next line on stdin (the test's go-ahead).
function nextLine() {
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: process.stdin });
    rl.once('line', (line) => { resolve(line); rl.close(); });
    rl.once('close', () => reject(new Error('stdin closed before the go-ahead')));
  });
}

async function run(base, token, deliveryId, screenshot) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'postwire-chromium-'));
  const origin = new URL(base).origin;
  const problems = [];
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(20000);
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // A refused token is an expected 401 in the console; anything else is worth failing on.
      if (m.type() === 'error' && !/401/.test(m.text())) problems.push(`console error: ${m.text()}`);
    });
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(`${origin}/`)) return route.continue();
      problems.push(`request to another origin: ${url}`);
      return route.abort();
    });

    // The page and its two assets are served.
    const res = await page.goto(`${base}/ui`);
    check(res && res.status() === 200, `GET /ui answered ${res && res.status()}`);
    check((res.headers()['content-type'] || '').includes('text/html'), 'GET /ui is not HTML');
    const login = page.getByTestId('token-input');
    await login.waitFor({ state: 'visible' });

    // A wrong token: the problem details are shown and no data.
    await login.fill(WRONG_TOKEN);
    await page.getByTestId('login-button').click();
    const error = page.getByTestId('login-error');
    await error.waitFor({ state: 'visible' });
    const errorText = await error.textContent();
    check(/401/.test(errorText), `the error for a wrong token does not say 401: ${errorText}`);
    check(await page.getByTestId('dashboard').isHidden(), 'the dashboard shows after a wrong token');
    check(await page.getByTestId('dlq-row').count() === 0, 'dead letters listed after a wrong token');
    check(await page.evaluate(() => sessionStorage.length) === 0, 'a wrong token was kept');

    // The right token.
    await login.fill(token);
    await page.getByTestId('login-button').click();
    await page.getByTestId('dashboard').waitFor({ state: 'visible' });
    check(await error.isHidden(), 'the error stays after signing in');
    const who = await page.getByTestId('whoami').textContent();
    check(/acme|every tenant/.test(who), `whoami does not show the tenants: ${who}`);

    // The dead letter, its row in the timeline and its details.
    const dead = page.locator(`[data-testid="dlq-row"][data-delivery-id="${deliveryId}"]`);
    await dead.waitFor({ state: 'visible' });
    const deadText = await dead.textContent();
    check(deadText.includes('500'), `the dead letter does not show the 500: ${deadText}`);
    const row = page.locator(`[data-testid="delivery-row"][data-delivery-id="${deliveryId}"]`);
    await row.waitFor({ state: 'visible' });
    check(await row.getAttribute('data-status') === 'dead', `the timeline shows ${await row.getAttribute('data-status')}`);
    await row.getByTestId('delivery-open').click();
    const detail = page.getByTestId('delivery-detail');
    await detail.waitFor({ state: 'visible' });
    await page.getByTestId('detail-attempt').first().waitFor({ state: 'visible' });
    const attempts = await page.getByTestId('detail-attempt').count();
    check(attempts >= 1, 'the details show no attempt');
    check((await page.getByTestId('detail-attempts').textContent()).includes('500'),
      'the attempts do not show the 500');
    const counts = await page.getByTestId('count-received').textContent();
    check(/^\d+$/.test(counts.trim()), `the received count is not a number: ${counts}`);
    check(await page.locator('[data-testid="chart-received"] rect').count() > 0, 'the chart has no bars');
    emit({ event: 'dlq-seen', seq: await dead.getAttribute('data-seq'), attempts });

    await nextLine();

    // Replay: the dead letter leaves the list and the delivery is reported delivered.
    await dead.getByTestId('dlq-replay').click();
    const outcome = page.getByTestId('dlq-outcome');
    await page.waitForFunction(
      () => /Delivered:|Failed again|Not delivered|failed/i.test(
        document.querySelector('[data-testid="dlq-outcome"]').textContent),
      null, { timeout: 90000 },
    );
    const outcomeText = await outcome.textContent();
    check(outcomeText.includes(`Delivered: ${deliveryId}`), `the replay outcome is: ${outcomeText}`);
    await dead.waitFor({ state: 'detached' });
    await page.locator(`[data-testid="delivery-row"][data-delivery-id="${deliveryId}"][data-status="delivered"]`)
      .waitFor({ state: 'visible' });

    const text = await page.evaluate(() => document.body.innerText);
    check(!text.includes(token), 'the page shows the token');
    await page.screenshot({ path: screenshot, fullPage: true });

    await page.getByTestId('logout-button').click();
    await login.waitFor({ state: 'visible' });
    check(await page.getByTestId('dashboard').isHidden(), 'the dashboard shows after signing out');
    check(await page.evaluate(() => sessionStorage.length) === 0, 'the token outlives signing out');
    check(problems.length === 0, problems.join('\n'));
    emit({ event: 'done', screenshot, outcome: outcomeText });
  } catch (err) {
    const failed = screenshot.replace(/\.png$/, '') + '-failed.png';
    for (const page of context.pages()) {
      await page.screenshot({ path: failed, fullPage: true }).catch(() => {});
    }
    err.message += problems.length ? `\n${problems.join('\n')}` : '';
    err.message += `\n(screenshot: ${failed})`;
    throw err;
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

const [base, token, deliveryId, screenshot] = process.argv.slice(2);
if (!screenshot) {
  process.stderr.write('usage: node dashboard.js <admin-base-url> <token> <delivery-id> <screenshot.png>\n');
  process.exit(2);
}
run(base.replace(/\/$/, ''), token, deliveryId, path.resolve(screenshot)).then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`dashboard: ${err.stack || err}\n`);
    process.exit(1);
  },
);
