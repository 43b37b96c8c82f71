// Drives Chromium (headless, playwright-core) through Latchkey's security
// key and passkey pages with the DevTools Protocol's virtual
// authenticators (WebAuthn domain): register a passkey after a password
// login, sign out, sign in with the passkey alone, then (after the test
// server removed alice's factors) register a security key without
// discoverable credentials and use it as a second factor. A screenshot of
// every page goes to cfg.screenshots. Reads its settings as JSON on stdin:
//   {issuer, username, password, registerURL, passkeyURL, autofillURL, enrollKeyURL,
//    secondFactorURL, callbackPrefix, resetURL, screenshots}
// and prints {"steps": [...], "consoleErrors": [...], "shots": [...]}.
import { passkeyAuthenticator, runFlow, screenshotter } from './browser.mjs';

const T = { timeout: 15000 };
await runFlow(async (page, cfg, out, context) => {
  const shot = await screenshotter(page, cfg.screenshots, out);
  const step = (name) => out.steps.push({ name, url: page.url() });
  const { cdp, authenticator: passkey } = await passkeyAuthenticator(context, page);
  const toCallback = () => page.waitForURL((u) => u.href.startsWith(cfg.callbackPrefix), T);

  const passwordLogin = async (shotName) => {
    await page.waitForSelector('#password', T);
    if (shotName) await shot(shotName);
    await page.fill('#username', cfg.username);
    await page.fill('#password', cfg.password);
    await Promise.all([page.waitForNavigation(T), page.click('form[action="/login"] button[type=submit]')]);
  };
  const register = async (label, shotName) => {
    await page.waitForSelector('#webauthn-button', T);
    await page.fill('#label', label);
    await shot(shotName);
    await Promise.all([page.waitForNavigation(T), page.click('#webauthn-button')]);
    if (await page.$('#recovery-codes')) {
      await shot(shotName + '-recovery-codes');
      await Promise.all([toCallback(), page.click('button[type=submit]')]);
    } else {
      await toCallback();
    }
  };
  const signOut = async (shotPrefix) => {
    await page.goto(cfg.issuer + '/logout');
    await page.waitForSelector('button[value=logout]', T);
    await shot(shotPrefix + '-confirm');
    await Promise.all([page.waitForNavigation(T), page.click('button[value=logout]')]);
    await shot(shotPrefix + '-signed-out');
    step('signed out');
  };

  // 1. Password login; the app asks for acr phr: register a passkey.
  await page.goto(cfg.registerURL);
  await passwordLogin('01-login');
  await register('Laptop passkey', '02-add-passkey');
  await shot('03-app');
  step('registered a passkey');
  const creds = await cdp.send('WebAuthn.getCredentials', { authenticatorId: passkey.authenticatorId });
  out.passkeyCredentials = creds.credentials.map((c) => ({ resident: c.isResidentCredential, signCount: c.signCount }));

  await signOut('04-sign-out');

  // 2. Passwordless: "Sign in with a passkey". The authenticator waits
  // for the user's touch until the button is clicked, so the page that
  // offers passkey autofill stays up for its screenshot.
  const presence = (enabled) => cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId: passkey.authenticatorId, enabled });
  await presence(false);
  await page.goto(cfg.passkeyURL);
  await page.waitForSelector('#passkey-button', T);
  await shot('05-login-with-passkey');
  await presence(true);
  await Promise.all([toCallback(), page.click('#passkey-button').catch(() => {})]);
  await shot('06-app');
  step('signed in with the passkey');

  // 2b. Passkey autofill (conditional mediation): the login page's
  // pending request completes as soon as the authenticator answers.
  await signOut('07-sign-out');
  await page.goto(cfg.autofillURL);
  await toCallback();
  step('signed in with passkey autofill');

  // 3. The server removes alice's factors; the passkey is gone from the
  // browser too. A security key without discoverable credentials.
  const reset = await page.request.get(cfg.resetURL);
  if (!reset.ok()) throw new Error('reset: ' + reset.status());
  await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: passkey.authenticatorId });
  const key = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'usb', hasResidentKey: false, hasUserVerification: false,
      automaticPresenceSimulation: true },
  });
  await signOut('08-sign-out');
  await page.goto(cfg.enrollKeyURL);
  await passwordLogin('');
  await register('YubiKey', '09-add-security-key');
  step('registered a security key');
  const keyCreds = await cdp.send('WebAuthn.getCredentials', { authenticatorId: key.authenticatorId });
  out.keyCredentials = keyCreds.credentials.map((c) => ({ resident: c.isResidentCredential, signCount: c.signCount }));

  // 4. Password, then the security key as second factor.
  await signOut('10-sign-out');
  await page.goto(cfg.secondFactorURL);
  await passwordLogin('');
  await page.waitForSelector('#webauthn-button', T);
  await shot('11-second-factor');
  await Promise.all([toCallback(), page.click('#webauthn-button')]);
  step('signed in with password and security key');
}, { steps: [], consoleErrors: [], shots: [] }, { viewport: { width: 800, height: 640 } });
