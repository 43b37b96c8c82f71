// Drives Chromium (headless, playwright-core) through a sign-in at a SAML
// IdP (crewjam's example IdP on 127.0.0.1) brokered by Latchkey (on
// localhost: another site), then optionally an RP-initiated logout that
// goes on to the IdP's single logout. Reads its settings as JSON on stdin:
//   {authorizeURL, username, password, callbackPrefix, startLogoutURL, byePrefix}
// and prints {"urls": [...], "consoleErrors": [...]} on success: urls are
// the pages the browser landed on, in order.
import { runFlow } from './browser.mjs';

await runFlow(async (page, cfg, out) => {
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
});
