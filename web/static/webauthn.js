// WebAuthn on Latchkey's pages, loaded as a file (CSP script-src 'self';
// nothing inline). A form with data-webauthn ("create", "get" or "login")
// and data-options (the server's JSON options; the challenge stays on the
// server) runs the ceremony when submitted and posts the browser's answer
// in its hidden "response" field. The login form also offers passkeys in
// the username field's autofill (conditional mediation) where the browser
// can.
'use strict';
(() => {
  const b64u = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const bytes = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  const ids = (list) => (list || []).map((c) => ({ ...c, id: bytes(c.id) }));

  function answer(c) {
    const r = c.response;
    const out = {
      id: c.id, rawId: b64u(c.rawId), type: c.type, authenticatorAttachment: c.authenticatorAttachment,
      clientExtensionResults: c.getClientExtensionResults(), response: { clientDataJSON: b64u(r.clientDataJSON) },
    };
    if (r.attestationObject) {
      out.response.attestationObject = b64u(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = b64u(r.authenticatorData);
      out.response.signature = b64u(r.signature);
      if (r.userHandle) out.response.userHandle = b64u(r.userHandle);
    }
    return JSON.stringify(out);
  }

  async function ceremony(form, create, signal, mediation) {
    const o = JSON.parse(form.dataset.options);
    const c = create
      ? await navigator.credentials.create({ publicKey: { ...o, challenge: bytes(o.challenge), user: { ...o.user, id: bytes(o.user.id) }, excludeCredentials: ids(o.excludeCredentials) } })
      : await navigator.credentials.get({ publicKey: { ...o, challenge: bytes(o.challenge), allowCredentials: ids(o.allowCredentials) }, signal, mediation });
    form.elements.response.value = answer(c);
    if (form.elements.via) form.elements.via.value = mediation === 'conditional' ? 'autofill' : 'button';
    form.submit();
  }

  function problem(text) {
    const e = document.getElementById('webauthn-error');
    if (e) { e.textContent = text; e.hidden = false; }
  }

  for (const form of document.querySelectorAll('form[data-webauthn]')) {
    const mode = form.dataset.webauthn;
    if (!window.PublicKeyCredential || !navigator.credentials) {
      problem('This browser cannot use security keys or passkeys.');
      continue;
    }
    let autofill = null;
    if (mode === 'login' && PublicKeyCredential.isConditionalMediationAvailable) {
      autofill = PublicKeyCredential.isConditionalMediationAvailable().then((ok) => {
        if (!ok) return null;
        const abort = new AbortController();
        const done = ceremony(form, false, abort.signal, 'conditional').catch(() => {});
        return { abort, done };
      }).catch(() => null);
    }
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const a = autofill && await autofill;
      autofill = null;
      if (a) { a.abort.abort(); await a.done; }
      try {
        await ceremony(form, mode === 'create');
      } catch (e) {
        problem(e && e.name === 'NotAllowedError'
          ? 'The request was cancelled or timed out. Try again.'
          : 'Your security key or passkey could not be used (' + ((e && e.name) || 'error') + ').');
      }
    });
  }
})();
