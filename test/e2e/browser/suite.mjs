// The hosted pages' browser suite, driven by test/e2e/browser_test.go
// against a running `latchkey serve`. Settings come as JSON on stdin; the
// result goes to stdout as JSON ({pages, violations, checks, consoleErrors},
// plus "error" and exit status 1 on failure).
//
// Two browsers (fresh profiles, so two devices): A signs in, switches the
// language, resets its password from a mailed link, enrolls TOTP, saves its
// recovery codes, consents, chooses an account; B signs in with a recovery
// code. A then ends B's session (B's account page asks it to sign in) and
// removes its authenticator app on /account, adds one again there, and
// signs out. Every page is screenshotted at 390 and 1280 px
// (cfg.shotDir/NAME-WIDTH.png) and checked with @axe-core/playwright
// (WCAG 2.0-2.2 A/AA and best practices) at both widths and in dark mode;
// serious and critical violations are reported; at 360 px no page may be
// wider than the screen. The page's CSP stays on.
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'];

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

const cfg = await readStdin();
const out = { pages: [], violations: [], overflow: [], checks: {}, consoleErrors: [], axeRuns: 0 };
const dirs = [];
const contexts = [];

// device opens a browser with a fresh profile (one device of the user).
async function device(name) {
  const dir = await mkdtemp(join(tmpdir(), 'lk-suite-'));
  dirs.push(dir);
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.LATCHKEY_CHROMIUM || '/usr/bin/chromium',
    headless: true, args, locale: 'en-US', viewport: { width: 1280, height: 800 },
  });
  contexts.push(context);
  const page = context.pages()[0] ?? await context.newPage();
  page.on('console', (m) => {
    const where = (m.location() && m.location().url) || '';
    if (m.type() === 'error' && !where.endsWith('/favicon.ico')) out.consoleErrors.push(`${name}: ${m.text()} (${where})`);
  });
  page.on('pageerror', (e) => out.consoleErrors.push(`${name}: page error: ${e.message}`));
  return page;
}

// check screenshots the page at both widths and runs axe at both widths
// and in dark mode, then records its name, path and language.
async function check(page, name) {
  await page.waitForLoadState('load');
  for (const [width, scheme] of [[390, 'light'], [1280, 'light'], [1280, 'dark']]) {
    await page.setViewportSize({ width, height: 800 });
    await page.emulateMedia({ colorScheme: scheme });
    if (scheme === 'light') {
      await page.screenshot({ path: join(cfg.shotDir, `${name}-${width}.png`), fullPage: true });
    }
    const res = await new AxeBuilder({ page }).withTags(tags).analyze();
    out.axeRuns++;
    for (const v of res.violations) {
      if (v.impact === 'serious' || v.impact === 'critical') {
        out.violations.push(`${name}@${width}/${scheme}: ${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((x) => x.target.join(' ')).join(', ')}`);
      }
    }
  }
  // The smallest phone we support: nothing wider than the screen.
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 360, height: 740 });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  if (wide > 360) out.overflow.push(`${name}: ${wide} px wide at 360`);
  await page.setViewportSize({ width: 1280, height: 800 });
  const u = new URL(page.url());
  out.pages.push({ name, path: u.pathname, lang: await page.getAttribute('html', 'lang'), title: await page.title() });
}

async function go(page, url) {
  await page.goto(url);
}

async function click(page, selector) {
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

async function signIn(page, password) {
  await page.fill('#username', cfg.username);
  await page.fill('#password', password);
  await click(page, 'form[action="/login"] button[type=submit]');
}

function totp(secret) {
  return execFileSync(cfg.oathtool, ['--totp', '-b', secret.replace(/\s+/g, '')], { encoding: 'utf8' }).trim();
}

async function latestMail(to) {
  const list = await (await fetch(`${cfg.mailpitAPI}/api/v1/messages`)).json();
  const m = list.messages.find((x) => x.To.some((r) => r.Address === to));
  if (!m) throw new Error(`no mail to ${to}`);
  return (await fetch(`${cfg.mailpitAPI}/api/v1/message/${m.ID}`)).json();
}

// types returns the data-type of every element matching selector.
async function types(page, selector) {
  return page.$$eval(selector, (els) => els.map((e) => e.dataset.type));
}

// texts returns the trimmed text of every element matching selector.
async function texts(page, selector) {
  return page.$$eval(selector, (els) => els.map((e) => e.textContent.replace(/\s+/g, ' ').trim()));
}

let failed = null;
try {
  const a = await device('A');
  // Login, and the language switcher (German, Japanese, back to English).
  await go(a, cfg.appURL);
  await check(a, 'login');
  await click(a, 'nav.languages a[lang=de]');
  await check(a, 'login-de');
  await click(a, 'nav.languages a[lang=ja]');
  await check(a, 'login-ja');
  out.checks.jaHeading = (await texts(a, 'h1'))[0];
  await click(a, 'nav.languages a[lang=en]');
  out.checks.enHeading = (await texts(a, 'h1'))[0];

  // Forgot password: the mailed link sets a new password.
  await click(a, 'a[href^="/account/forgot"]');
  await check(a, 'forgot');
  await a.fill('#email', cfg.email);
  await click(a, 'form[action="/account/forgot"] button[type=submit]');
  await check(a, 'forgot-sent');
  const mail = await latestMail(cfg.email);
  const link = mail.Text.match(/http:\/\/\S+\/account\/reset\?token=\S+/);
  if (!link) throw new Error(`no reset link in: ${mail.Text}`);
  await go(a, link[0]);
  await check(a, 'reset-password');
  await a.fill('#password', cfg.newPassword);
  await a.fill('#confirm', cfg.newPassword);
  await click(a, 'form button[type=submit]');
  await check(a, 'reset-done');

  // Sign in; the app asks for a second factor: enroll TOTP.
  await go(a, cfg.appURL);
  await signIn(a, cfg.newPassword);
  await check(a, 'mfa-enroll');
  await a.fill('#code', totp(await a.textContent('#totp-secret')));
  await click(a, 'form[action="/mfa/enroll"] button[type=submit]');
  await check(a, 'mfa-recovery-codes');
  const codes = await texts(a, '#recovery-codes code');
  out.checks.recoveryCodes = codes.length;
  await click(a, 'form[action="/mfa/continue"] button[type=submit]');
  out.checks.appLanding = a.url();

  // A third-party app asks for consent; then the account chooser.
  await go(a, cfg.thirdURL);
  await check(a, 'consent');
  await click(a, 'button[value=approve]');
  out.checks.thirdLanding = a.url();
  await go(a, cfg.selectURL);
  await check(a, 'select-account');
  await click(a, 'ul.accounts button[name=sid]');
  out.checks.selectLanding = a.url();

  // Device B signs in with a recovery code.
  const b = await device('B');
  // B signs in with the keyboard only: the username field has the focus,
  // Tab reaches the password, Enter submits.
  await go(b, cfg.appURL);
  const focus = [await b.evaluate(() => document.activeElement.id)];
  await b.keyboard.type(cfg.username);
  await b.keyboard.press('Tab');
  focus.push(await b.evaluate(() => document.activeElement.id));
  await b.keyboard.type(cfg.newPassword);
  await Promise.all([b.waitForNavigation(), b.keyboard.press('Enter')]);
  out.checks.keyboardFocus = focus;
  await check(b, 'mfa-challenge');
  await click(b, '#use-recovery');
  await check(b, 'mfa-recovery');
  await b.fill('#code', codes[0]);
  await click(b, 'form[action="/mfa"] button[type=submit]');
  out.checks.bLanding = b.url();
  await go(b, cfg.accountURL);
  out.checks.bSessionsBefore = (await texts(b, '#sessions > li')).length;

  // A's account page: end B's session, then remove the authenticator app.
  await go(a, cfg.accountURL);
  await check(a, 'account');
  await a.fill('#name', 'Alice Liddell');
  await click(a, '#profile button[type=submit]');
  out.checks.profileMessage = (await texts(a, '#account-message'))[0];
  out.checks.sessionLines = await texts(a, '#sessions > li');
  out.checks.sessionsBefore = out.checks.sessionLines.length;
  await click(a, '#sessions form[action="/account/sessions/end"] button[type=submit]');
  await check(a, 'account-session-ended');
  out.checks.sessionMessage = (await texts(a, '#account-message'))[0];
  out.checks.sessionsAfter = (await texts(a, '#sessions > li')).length;
  const bAfter = await b.goto(cfg.accountURL);
  out.checks.bAccountAfter = { status: bAfter.status(), path: new URL(b.url()).pathname };
  await check(b, 'account-sign-in');

  out.checks.factorsBefore = await types(a, '#factors > li');
  const totpItem = a.locator('#factors > li[data-type=totp]');
  await Promise.all([a.waitForNavigation(), totpItem.locator('form[action="/account/factors/remove"] button[type=submit]').click()]);
  await check(a, 'account-factor-removed');
  out.checks.factorMessage = (await texts(a, '#account-message'))[0];
  out.checks.factorsAfter = await types(a, '#factors > li');
  // Link the company's sign-in service from the account page, then
  // unlink it again.
  await click(a, '#linkable form[action="/account/identities/link"] button[type=submit]');
  await check(a, 'account-linked');
  out.checks.linkedMessage = (await texts(a, '#account-message'))[0];
  out.checks.linked = await texts(a, '#identities > li');
  await click(a, '#identities form[action="/account/identities/unlink"] button[type=submit]');
  await check(a, 'account-unlinked');
  out.checks.unlinkedMessage = (await texts(a, '#account-message'))[0];

  // Add an authenticator app again, from the account page.
  await click(a, '#add-totp button[type=submit]');
  await check(a, 'account-add-totp');
  await a.fill('#code', totp(await a.textContent('#totp-secret')));
  await a.fill('#label', 'Work phone');
  await click(a, 'form[action="/account/factors/totp/confirm"] button[type=submit]');
  await check(a, 'account-totp-added');
  out.checks.addedMessage = (await texts(a, '#account-message'))[0];
  out.checks.addedCodes = (await texts(a, '#recovery-codes code')).length;
  // Add a passkey too, with a DevTools virtual authenticator.
  const cdp = await a.context().newCDPSession(a);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  await click(a, '#add-webauthn-button');
  await check(a, 'account-add-passkey');
  await a.fill('#label', 'Laptop');
  await click(a, '#webauthn-button');
  await check(a, 'account-passkey-added');
  out.checks.passkeyMessage = (await texts(a, '#account-message'))[0];
  out.checks.factorsAdded = await types(a, '#factors > li');
  out.checks.events = await types(a, '#events tr[data-type]');

  out.checks.eventTitles = await texts(a, '#events tr[data-type] td:first-child');

  // Device C creates an account: the mailed link confirms the address
  // (signing in before that is refused), then the sign-in continues.
  const c = await device('C');
  await go(c, cfg.registerAppURL);
  await click(c, '#register');
  await check(c, 'register');
  await c.fill('#username', cfg.newUser);
  await c.fill('#email', cfg.newEmail);
  await c.fill('#password', cfg.newUserPassword);
  await c.fill('#confirm', cfg.newUserPassword);
  await click(c, 'form[action="/account/register"] button[type=submit]');
  await check(c, 'register-sent');
  await click(c, '#back-to-sign-in');
  await c.fill('#username', cfg.newUser);
  await c.fill('#password', cfg.newUserPassword);
  await click(c, 'form[action="/login"] button[type=submit]');
  await check(c, 'login-unconfirmed');
  out.checks.unconfirmed = (await texts(c, '.error'))[0];
  const verify = (await latestMail(cfg.newEmail)).Text.match(/http:\/\/\S+\/account\/verify-email\?token=\S+/);
  if (!verify) throw new Error('no verification link mailed');
  await go(c, verify[0]);
  await check(c, 'verify-email');
  await click(c, 'form button[type=submit]');
  await check(c, 'verify-email-done');
  // The sign-in continues with the company's sign-in service, whose
  // account has carol's address: Latchkey asks carol to prove the local
  // account is hers before it links them.
  await click(c, '#continue-sign-in');
  await click(c, 'form[action="/login/upstream"] button[value=corp]');
  await check(c, 'link');
  await c.fill('#username', cfg.newUser);
  await c.fill('#password', cfg.newUserPassword);
  await click(c, 'form[action="/link"] button[type=submit]');
  out.checks.cLanding = c.url();

  // The app then asks C for a second factor: codes by e-mail.
  await go(c, cfg.appURL);
  await click(c, '#enroll-email');
  await check(c, 'mfa-email-enroll');
  await click(c, 'form[action="/mfa/otp/enroll"] button[type=submit]');
  await check(c, 'mfa-email-code');
  const codeMail = await latestMail(cfg.newEmail);
  const code = codeMail.Text.match(/\b(\d{6})\b/);
  if (!code) throw new Error(`no code in: ${codeMail.Subject}`);
  await c.fill('#code', code[1]);
  await click(c, 'form[action="/mfa/otp/enroll/confirm"] button[type=submit]');
  await click(c, 'form[action="/mfa/continue"] button[type=submit]');
  out.checks.cMFALanding = c.url();

  // An app that asks for a phishing-resistant factor (acr phr): C
  // registers a passkey during the sign-in.
  const ccdp = await c.context().newCDPSession(c);
  await ccdp.send('WebAuthn.enable', { enableUI: false });
  await ccdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  await go(c, cfg.phrURL);
  await check(c, 'mfa-passkey-enroll');
  await click(c, '#webauthn-button');
  if (await c.$('form[action="/mfa/continue"]')) await click(c, 'form[action="/mfa/continue"] button[type=submit]');
  out.checks.cPhrLanding = c.url();

  // Error page, logout confirmation, signed out.
  await go(a, cfg.errorURL);
  await check(a, 'error');
  await go(a, cfg.logoutURL);
  await check(a, 'logout-confirm');
  await click(a, 'button[value=logout]');
  await check(a, 'signed-out');

  // Signed out, A signs in again with the password and the new passkey
  // as the second factor. The authenticator holds back on the login page,
  // whose passkey autofill would answer first.
  const presence = (enabled) => cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled });
  await presence(false);
  await go(a, cfg.appURL);
  await signIn(a, cfg.newPassword);
  if (!(await a.$('#webauthn-button'))) await click(a, '#use-webauthn');
  await check(a, 'mfa-passkey');
  await presence(true);
  await click(a, '#webauthn-button');
  out.checks.passkeyLanding = a.url();
} catch (e) {
  failed = e;
} finally {
  for (const c of contexts) await c.close().catch(() => {});
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}
if (failed) {
  process.stdout.write(JSON.stringify({ error: String(failed.stack || failed.message), ...out }) + '\n');
  process.exit(1);
}
process.stdout.write(JSON.stringify(out) + '\n');
