// Drives Chromium (headless, playwright-core) through a sign-in at a SAML
// IdP (crewjam's example IdP on 127.0.0.1) brokered by Latchkey (on
// localhost: another site), then optionally an RP-initiated logout that
// goes on to the IdP's single logout. Reads its settings as JSON on stdin:
//   {authorizeURL, username, password, callbackPrefix, startLogoutURL, byePrefix}
// and prints {"urls": [...], "consoleErrors": [...]} on success: urls are
// every page the browser landed on, in order.
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
  page.on('console', (m) => {
    const where = (m.location() && m.location().url) || '';
    if (m.type() === 'error' && !where.endsWith('/favicon.ico')) out.consoleErrors.push(m.text() + ' (' + where + ')');
  });
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) out.urls.push(f.url()); });
  // The app's authorization request; Latchkey goes straight on to the one
  // connector, the IdP shows its login form.
  await page.goto(cfg.authorizeURL);
  await page.waitForSelector('input[name=user]', { timeout: 15000 });
  await page.fill('input[name=user]', cfg.username);
  await page.fill('input[name=password]', cfg.password);
  // The IdP answers with a page that auto-posts the SAMLResponse to
  // Latchkey's ACS (cross-site), which goes on to the app.
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(cfg.callbackPrefix), { timeout: 20000 }),
    page.click('input[type=submit]'),
  ]);
  if (cfg.startLogoutURL) {
    await page.goto(cfg.startLogoutURL);
    await page.waitForURL((u) => u.href.startsWith(cfg.byePrefix), { timeout: 20000 });
  }
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
