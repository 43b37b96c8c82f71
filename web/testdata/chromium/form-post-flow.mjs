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
import { runFlow } from './browser.mjs';

await runFlow(async (page, cfg, out) => {
  out.bodies = [];
  for (const u of cfg.authorizeURLs) {
    await page.goto(u);
    await page.waitForURL((x) => x.href.startsWith(cfg.callbackPrefix), { timeout: 15000 });
    await page.waitForLoadState('load');
    out.urls.push(page.url());
    out.bodies.push(await page.textContent('body'));
  }
});
