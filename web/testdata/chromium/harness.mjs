// Shared by the flow scripts: settings as JSON on stdin, a headless
// Chromium in a fresh profile, and the JSON result on stdout (exit 1
// with {"error": ...} when the flow failed).
import { chromium } from 'playwright-core';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function readSettings() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

// run launches Chromium, calls flow(context, out) and prints out.
export async function run(out, flow, options = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'lk-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.LATCHKEY_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    ...options,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  let failed = null;
  try {
    await flow(context, out);
  } catch (e) {
    failed = e;
  } finally {
    await context.close();
    await rm(dir, { recursive: true, force: true });
  }
  if (failed) {
    process.stdout.write(JSON.stringify({ error: String(failed && (failed.stack || failed.message)), ...out }) + '\n');
    process.exit(1);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

// watchConsole records the page's console errors (but the browser's own
// favicon requests) and uncaught exceptions in out.consoleErrors.
export function watchConsole(page, out) {
  page.on('console', (m) => {
    const where = (m.location() && m.location().url) || '';
    if (m.type() === 'error' && !where.endsWith('/favicon.ico')) out.consoleErrors.push(m.text() + ' (' + where + ')');
  });
  page.on('pageerror', (e) => out.consoleErrors.push('page error: ' + e.message));
}
