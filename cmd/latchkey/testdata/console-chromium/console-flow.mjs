// Drives Chromium (headless, playwright-core) through the admin console:
// sign in through Latchkey, add a connector and a public client in the
// console's forms, sign in to a relying party with the new client, and
// take a screenshot of every page. Reads its settings as JSON on stdin:
//   {consoleURL, username, password, clientRedirectURI, authorizeURL, rpDonePrefix, shotDir}
// (authorizeURL has CLIENT_ID where the new client's id goes) and prints
// {"urls": [...], "consoleErrors": [...], "rpPage": "..."} on success.
import { chromium } from 'playwright-core';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

const cfg = JSON.parse(await readStdin());
const dir = await mkdtemp(join(tmpdir(), 'lk-console-'));
const context = await chromium.launchPersistentContext(dir, {
  executablePath: process.env.LATCHKEY_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const out = { urls: [], consoleErrors: [], rpPage: '' };
let failed = null;
const shot = async (page, name) => {
  await page.screenshot({ path: join(cfg.shotDir, `admin-${name}.png`), fullPage: true });
};
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.on('console', (m) => {
    const where = (m.location() && m.location().url) || '';
    if (m.type() === 'error' && !where.endsWith('/favicon.ico')) out.consoleErrors.push(m.text() + ' (' + where + ')');
  });
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) out.urls.push(f.url()); });

  await page.goto(cfg.consoleURL + '/admin/');
  await page.fill('#username', cfg.username);
  await page.fill('#password', cfg.password);
  await Promise.all([
    page.waitForURL((u) => u.href === cfg.consoleURL + '/admin/', { timeout: 15000 }),
    page.click('button[type=submit]'),
  ]);
  await page.waitForSelector('text=Sign-ins per hour');
  await shot(page, 'dashboard');

  await page.goto(cfg.consoleURL + '/admin/connectors');
  await page.selectOption('#choose-type', 'github');
  await Promise.all([page.waitForNavigation(), page.click('form.filters button[type=submit]')]);
  await page.fill('#id', 'corp-github');
  await page.fill('#name', 'Corp GitHub');
  await page.fill('#f-clientID', 'Iv1.0123456789');
  await page.fill('#f-clientSecret', 'console-connector-secret');
  await page.fill('#f-orgs', 'corp');
  await Promise.all([page.waitForNavigation(), page.click('form.block button[type=submit]')]);
  await page.waitForSelector('text=Added connector corp-github');
  await shot(page, 'connectors');

  await page.goto(cfg.consoleURL + '/admin/clients');
  await page.fill('#client_id', 'shop');
  await page.fill('#client_name', 'Shop');
  await page.fill('#redirect_uris', cfg.clientRedirectURI);
  await page.check('input[name=public]');
  await Promise.all([page.waitForNavigation(), page.click('form.block button[type=submit]')]);
  await page.waitForSelector('text=Registered client shop');
  await shot(page, 'clients');

  await page.goto(cfg.consoleURL + '/admin/users');
  await shot(page, 'users');
  await page.click('td a');
  await page.waitForSelector('h2:has-text("Sessions")');
  await shot(page, 'user');
  await page.goto(cfg.consoleURL + '/admin/keys');
  await shot(page, 'keys');

  // The new client works: the admin's Latchkey session signs them in to
  // the relying party without another password.
  await page.goto(cfg.authorizeURL.replace('CLIENT_ID', 'shop'));
  await page.waitForURL((u) => u.href.startsWith(cfg.rpDonePrefix), { timeout: 15000 });
  out.rpPage = await page.textContent('body');

  await page.goto(cfg.consoleURL + '/admin/audit');
  await shot(page, 'audit');
} catch (e) {
  failed = e;
} finally {
  await context.close();
  await rm(dir, { recursive: true, force: true });
}
if (failed) {
  console.error(String(failed && failed.stack || failed));
  console.log(JSON.stringify(out));
  process.exit(1);
}
console.log(JSON.stringify(out));
