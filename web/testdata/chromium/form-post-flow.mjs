// Drives Chromium (headless, playwright-core) through sign-ins whose
// upstream answers with response_mode=form_post (Sign in with Apple): the
// upstream's page on 127.0.0.1 auto-submits a cross-site POST to
// Latchkey's callback on localhost, where the SameSite=Lax binding cookie
// is not sent; Latchkey must resume it as a GET on its own origin. Reads
// its settings as JSON on stdin:
//   {authorizeURLs: [...], callbackPrefix}
// opens each authorize URL in turn in one browser, waits until the
// relying party's callback has loaded, and prints
// {"urls": [...], "bodies": [...], "consoleErrors": [...]} on success.
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
const out = { urls: [], bodies: [], consoleErrors: [] };
let failed = null;
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.on('console', (m) => {
    const where = (m.location() && m.location().url) || '';
    if (m.type() === 'error' && !where.endsWith('/favicon.ico')) out.consoleErrors.push(m.text() + ' (' + where + ')');
  });
  for (const u of cfg.authorizeURLs) {
    await page.goto(u);
    await page.waitForURL((x) => x.href.startsWith(cfg.callbackPrefix), { timeout: 15000 });
    await page.waitForLoadState('load');
    out.urls.push(page.url());
    out.bodies.push(await page.textContent('body'));
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
