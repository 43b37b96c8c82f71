// Visits the hosted pages in Chromium at a phone and a desktop width:
// login (English, then German through the switcher), consent, second-
// factor enrollment, account selection, an error page, the logout
// confirmation and the signed-out page. For each
// page and width it saves a full-page screenshot to cfg.shotDir and runs
// axe-core (WCAG 2.x A/AA rules); out.violations lists every serious or
// critical one. The context bypasses CSP only so that axe can be injected.
import { runFlow } from './browser.mjs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
// Each page: light at 390 and 1280 px (screenshots), dark at 1280 px.
const passes = [[390, 'light'], [1280, 'light'], [1280, 'dark']];

async function check(page, name, out, cfg) {
  await page.waitForLoadState('load');
  for (const [width, scheme] of passes) {
    await page.setViewportSize({ width, height: 800 });
    await page.emulateMedia({ colorScheme: scheme });
    if (scheme === 'light') {
      await page.screenshot({ path: join(cfg.shotDir, `pages-${name}-${width}.png`), fullPage: true });
    }
    if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) {
      await page.addScriptTag({ path: axePath });
    }
    const res = await page.evaluate(() => window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
    }));
    out.axeRuns++;
    for (const v of res.violations) {
      if (v.impact === 'serious' || v.impact === 'critical') {
        out.violations.push(`${name}@${width}/${scheme}: ${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
      }
    }
  }
  await page.emulateMedia({ colorScheme: 'light' });
  out.pages.push({ name, url: page.url(), lang: await page.getAttribute('html', 'lang') });
}

async function signIn(page, cfg) {
  await page.fill('#username', cfg.username);
  await page.fill('#password', cfg.password);
  await Promise.all([page.waitForNavigation(), page.click('form[action="/login"] button[type=submit]')]);
}

await runFlow(async (page, cfg, out) => {
  await page.goto(cfg.consentURL);
  await check(page, 'login', out, cfg);
  await Promise.all([page.waitForNavigation(), page.click('nav.languages a[lang=de]')]);
  await check(page, 'login-de', out, cfg);
  await Promise.all([page.waitForNavigation(), page.click('nav.languages a[lang=en]')]);
  await signIn(page, cfg);
  await check(page, 'consent', out, cfg);
  await Promise.all([page.waitForNavigation(), page.click('button[value=approve]')]);
  out.urls.push(page.url());

  await page.goto(cfg.selectURL);
  await check(page, 'select-account', out, cfg);

  await page.goto(cfg.mfaURL);
  if (await page.$('#password')) await signIn(page, cfg);
  await check(page, 'mfa-enroll', out, cfg);

  await page.goto(cfg.errorURL);
  await check(page, 'error', out, cfg);

  await page.goto(cfg.logoutURL);
  await check(page, 'logout-confirm', out, cfg);
  await Promise.all([page.waitForNavigation(), page.click('button[value=logout]')]);
  await check(page, 'signed-out', out, cfg);
}, { urls: [], consoleErrors: [], pages: [], violations: [], axeRuns: 0 }, { bypassCSP: true, locale: 'en-US', viewport: { width: 1280, height: 800 } });
