// What every Chromium flow here shares: read the settings as JSON on
// stdin, launch headless Chromium (playwright-core) with a fresh profile,
// collect console errors (but the browser's own favicon requests), run the
// flow, close the browser, and print {"urls": [...], "consoleErrors": [...],
// ...} as JSON; on failure the same with "error", and exit status 1.
import { chromium } from 'playwright-core';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

// runFlow runs flow(page, cfg, out, context); out starts as init (default
// {urls: [], consoleErrors: []}); page errors are console errors too;
// options go to the browser context (a viewport, say).
export async function runFlow(flow, init = { urls: [], consoleErrors: [] }, options = {}) {
  const cfg = JSON.parse(await readStdin());
  const dir = await mkdtemp(join(tmpdir(), 'lk-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.LATCHKEY_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    ...options,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const out = init;
  let failed = null;
  try {
    const page = context.pages()[0] ?? await context.newPage();
    page.on('console', (m) => {
      const where = (m.location() && m.location().url) || '';
      if (m.type() === 'error' && !where.endsWith('/favicon.ico')) out.consoleErrors.push(m.text() + ' (' + where + ')');
    });
    page.on('pageerror', (e) => out.consoleErrors.push('page error: ' + e.message));
    await flow(page, cfg, out, context);
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

// screenshotter makes dir and returns shot(name): a full-page screenshot
// of page saved as dir/name.png and listed in out.shots.
export async function screenshotter(page, dir, out) {
  await mkdir(dir, { recursive: true });
  return async (name) => {
    const file = join(dir, name + '.png');
    await page.screenshot({ path: file, fullPage: true });
    out.shots.push(file);
  };
}

// passkeyAuthenticator turns on the DevTools Protocol's WebAuthn domain for
// page and adds a virtual platform authenticator that holds passkeys
// (resident keys, user verification, automatic presence). It returns the
// CDP session and the authenticator ({authenticatorId}).
export async function passkeyAuthenticator(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const authenticator = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { cdp, authenticator };
}
