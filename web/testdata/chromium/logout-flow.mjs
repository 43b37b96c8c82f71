// Drives Chromium (headless, playwright-core) through a sign-in and an
// RP-initiated logout that the relying party starts with a cross-site form
// POST, as a real browser does it: SameSite=Lax cookies, CSP frame-src and
// script hashes, iframes, redirects. Reads its settings as JSON on stdin:
//   {authorizeURL, username, password, callbackPrefix, startLogoutURL, byePrefix}
// and prints {"urls": [...], "consoleErrors": [...]} on success.
import { readSettings, run, watchConsole } from './harness.mjs';

const cfg = await readSettings();
await run({ urls: [], consoleErrors: [] }, async (context, out) => {
  const page = context.pages()[0] ?? await context.newPage();
  watchConsole(page, out);
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
});
