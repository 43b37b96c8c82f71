// Drives Chromium (headless, playwright-core) through the account page:
// opening /account without a session signs in (the login page's password
// form), then the "Link" button of the one offered connector goes to the
// upstream (on another site, 127.0.0.1) and back to /account. Reads its
// settings as JSON on stdin:
//   {accountURL, username, password}
// and prints {"urls": [...], "signedIn": "...", "linked": "...",
// "consoleErrors": [...]} on success.
import { runFlow } from './browser.mjs';

await runFlow(async (page, cfg, out) => {
  await page.goto(cfg.accountURL);
  await page.waitForURL((x) => x.pathname === '/login', { timeout: 15000 });
  out.urls.push(page.url());
  await page.fill('input[name="username"]', cfg.username);
  await page.fill('input[name="password"]', cfg.password);
  await Promise.all([
    page.waitForURL((x) => x.href === cfg.accountURL, { timeout: 15000 }),
    page.click('form:has(input[name="password"]) button[type="submit"]'),
  ]);
  out.urls.push(page.url());
  out.signedIn = await page.textContent('p.sub');
  await Promise.all([
    page.waitForSelector('#account-message, #account-error, h1', { timeout: 15000 }),
    page.click('#linkable button[type="submit"]'),
  ]);
  await page.waitForURL((x) => x.href === cfg.accountURL, { timeout: 15000 });
  await page.waitForLoadState('load');
  out.urls.push(page.url());
  out.linked = (await page.textContent('#account-message')) || '';
});
