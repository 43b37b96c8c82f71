// What the Chromium scripts share: their JSON settings from stdin, a
// headless Chromium in a fresh profile (../shared/PEERS.md flags), the
// console errors of the page, and the one JSON line they print.
import { chromium } from 'playwright-core';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

// run launches Chromium, calls flow(page, out) with out = {urls: [],
// consoleErrors: []}, closes the browser and prints out (with error and
// exit status 1 when flow threw).
export async function run(flow) {
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
    await flow(page, out);
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
}
