// Drives Chromium (headless, playwright-core) through adding second
// factors on Latchkey's account page, with a DevTools Protocol virtual
// authenticator (WebAuthn domain): sign in with the password, open
// /account, open the authenticator-app page (screenshot only), add a
// passkey, sign out, sign in with the passkey alone. A screenshot of
// every page goes to cfg.screenshots. Reads its settings as JSON on stdin:
//   {issuer, username, password, loginURL, passkeyURL, callbackPrefix, label, screenshots}
// and prints {"steps": [...], "consoleErrors": [...], "shots": [...],
// "credentials": [...], "message": "..."}.
import { passkeyAuthenticator, runFlow, screenshotter } from './browser.mjs';

const T = { timeout: 15000 };
await runFlow(async (page, cfg, out, context) => {
  const shot = await screenshotter(page, cfg.screenshots, out);
  const step = (name) => out.steps.push({ name, url: page.url() });
  const { cdp, authenticator: auth } = await passkeyAuthenticator(context, page);
  const presence = (enabled) => cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId: auth.authenticatorId, enabled });
  const toCallback = () => page.waitForURL((u) => u.href.startsWith(cfg.callbackPrefix), T);
  const account = cfg.issuer + '/account';

  // 1. Sign in with the password.
  await page.goto(cfg.loginURL);
  await page.waitForSelector('#password', T);
  await page.fill('#username', cfg.username);
  await page.fill('#password', cfg.password);
  await Promise.all([toCallback(), page.click('form[action="/login"] button[type=submit]')]);
  step('signed in with the password');

  // 2. The account page offers both factors.
  await page.goto(account);
  await page.waitForSelector('#add-webauthn-button', T);
  await shot('01-account');

  // 3. The authenticator-app page (QR code and key), then back.
  await Promise.all([page.waitForNavigation(T), page.click('#add-totp button[type=submit]')]);
  await page.waitForSelector('#totp-secret', T);
  await shot('02-account-add-authenticator-app');
  await Promise.all([page.waitForNavigation(T), page.click('#cancel')]);

  // 4. Add a passkey: the ceremony page runs navigator.credentials.create.
  await Promise.all([page.waitForNavigation(T), page.click('#add-webauthn-button')]);
  await page.waitForSelector('#webauthn-button', T);
  await page.fill('#label', cfg.label);
  await shot('03-account-add-passkey');
  await Promise.all([page.waitForNavigation(T), page.click('#webauthn-button')]);
  await page.waitForSelector('#account-message', T);
  out.message = await page.textContent('#account-message');
  await shot('04-account-with-passkey');
  step('added a passkey');
  const creds = await cdp.send('WebAuthn.getCredentials', { authenticatorId: auth.authenticatorId });
  out.credentials = creds.credentials.map((c) => ({ resident: c.isResidentCredential, signCount: c.signCount }));

  // 5. Sign out.
  await page.goto(cfg.issuer + '/logout');
  await page.waitForSelector('button[value=logout]', T);
  await Promise.all([page.waitForNavigation(T), page.click('button[value=logout]')]);
  step('signed out');

  // 6. Sign in with the passkey alone (the touch waits for the button, so
  // autofill does not answer first).
  await presence(false);
  await page.goto(cfg.passkeyURL);
  await page.waitForSelector('#passkey-button', T);
  await presence(true);
  await Promise.all([toCallback(), page.click('#passkey-button').catch(() => {})]);
  await shot('05-app');
  step('signed in with the passkey');
}, { steps: [], consoleErrors: [], shots: [] }, { viewport: { width: 800, height: 640 } });
