// Visits the hosted pages in Chromium at a phone and a desktop width:
// login (English, then German through the switcher), consent, second-
// factor enrollment, an error page and the logout confirmation. For each
// page and width it saves a full-page screenshot to cfg.shotDir and runs
// axe-core (WCAG 2.x A/AA rules); out.violations lists every serious or
// critical one. The context bypasses CSP only so that axe can be injected.
import { runFlow } from './browser.mjs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const widths = [390, 1280];

async function check(page, name, out, cfg) {
  await page.waitForLoadState('load');
  for (const width of widths) {
    await page.setViewportSize({ width, height: 800 });
    await page.screenshot({ path: join(cfg.shotDir, `pages-${name}-${width}.png`), fullPage: true });
    if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) {
      await page.addScriptTag({ path: axePath });
    }
    const res = await page.evaluate(() => window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
    }));
    out.axeRuns++;
    for (const v of res.violations) {
      if (v.impact === 'serious' || v.impact === 'critical') {
        out.violations.push(`${name}@${width}: ${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
      }
    }
  }
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

  await page.goto(cfg.mfaURL);
  if (await page.$('#password')) await signIn(page, cfg);
  await check(page, 'mfa-enroll', out, cfg);

  await page.goto(cfg.errorURL);
  await check(page, 'error', out, cfg);

  await page.goto(cfg.logoutURL);
  await check(page, 'logout-confirm', out, cfg);
}, { urls: [], consoleErrors: [], pages: [], violations: [], axeRuns: 0 }, { bypassCSP: true, locale: 'en-US', viewport: { width: 1280, height: 800 } });
