// Drives Chromium (headless, playwright-core) through a sign-in and an
// RP-initiated logout that the relying party starts with a cross-site form
// POST, as a real browser does it: SameSite=Lax cookies, CSP frame-src and
// script hashes, iframes, redirects. Reads its settings as JSON on stdin:
//   {authorizeURL, username, password, callbackPrefix, startLogoutURL, byePrefix}
// and prints {"urls": [...], "consoleErrors": [...]} on success.
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
const dir = await mkdtemp(join(tmpdir(), 'lk-chromium-'));
const context = await chromium.launchPersistentContext(dir, {
  executablePath: process.env.LATCHKEY_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const out = { urls: [], consoleErrors: [] };
let failed = null;
try {
  const page = context.pages()[0] ?? await context.newPage();
  // Errors except the browser's own favicon requests.
  page.on('console', (m) => {
    const where = (m.location() && m.location().url) || '';
    if (m.type() === 'error' && !where.endsWith('/favicon.ico')) out.consoleErrors.push(m.text() + ' (' + where + ')');
  });
  await page.goto(cfg.authorizeURL);
  await page.fill('#username', cfg.username);
  await page.fill('#password', cfg.password);
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(cfg.callbackPrefix), { timeout: 15000 }),
    page.click('button[type=submit]'),
  ]);
  out.urls.push(page.url());
  // The relying party's page auto-submits a form POST to /logout.
  const started = Date.now();
  await page.goto(cfg.startLogoutURL);
  await page.waitForURL((u) => u.href.startsWith(cfg.byePrefix), { timeout: 15000 });
  out.urls.push(page.url());
  out.logoutMillis = Date.now() - started;
} catch (e) {
  failed = e;
} finally {
  await context.close();
  await rm(dir, { recursive: true, force: true });
}
if (failed) {
  process.stdout.write(JSON.stringify({ error: String(failed && failed.message), ...out }) + '\n');
  process.exit(1);
}
process.stdout.write(JSON.stringify(out) + '\n');
