// openid-client (panva, v6) as a relying party against a running
// `latchkey serve`. Started by interop_test.go, which creates the users and
// clients with the latchkey CLI and passes them in INTEROP_* environment
// variables. Run alone with those variables set:
//
//   node --test interop.test.mjs
//
// The browser part (authorize -> login form -> redirect or form_post back to
// the app) is done here with fetch and a small cookie jar; the response that
// would reach the app is handed to openid-client untouched.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import * as client from 'openid-client'

function env(name) {
  const v = process.env[name]
  if (v === undefined || v === '') throw new Error(`environment variable ${name} is not set`)
  return v
}

const issuer = env('INTEROP_ISSUER')
const redirectUri = env('INTEROP_REDIRECT_URI')
const username = env('INTEROP_USERNAME')
const password = env('INTEROP_PASSWORD')
const email = env('INTEROP_EMAIL')
const group = env('INTEROP_GROUP')
// A user of its own for the MFA test: it enrolls TOTP, after which every
// acr_values=mfa sign-in asks it for a code.
const mfaUser = { username: env('INTEROP_MFA_USERNAME'), password: env('INTEROP_MFA_PASSWORD') }
const clients = {
  // no token_endpoint_auth_method: both basic and post are accepted
  generated: { id: env('INTEROP_CLIENT_GENERATED_ID'), secret: env('INTEROP_CLIENT_GENERATED_SECRET') },
  // --secret-stdin
  stdin: { id: env('INTEROP_CLIENT_STDIN_ID'), secret: env('INTEROP_CLIENT_STDIN_SECRET') },
  // --metadata {"token_endpoint_auth_method":"client_secret_basic"}
  basic: { id: env('INTEROP_CLIENT_BASIC_ID'), secret: env('INTEROP_CLIENT_BASIC_SECRET') },
  // --metadata {"token_endpoint_auth_method":"client_secret_post"}
  post: { id: env('INTEROP_CLIENT_POST_ID'), secret: env('INTEROP_CLIENT_POST_SECRET') },
  // --public
  public: { id: env('INTEROP_CLIENT_PUBLIC_ID') },
  // --metadata {"grant_types":["client_credentials"],"scope":"api:read api:write"}
  service: { id: env('INTEROP_CLIENT_SERVICE_ID'), secret: env('INTEROP_CLIENT_SERVICE_SECRET') },
  // --metadata {"token_endpoint_auth_method":"private_key_jwt","jwks":{...}}:
  // the private half of the registered ES256 key, as a JWK
  pkjwt: { id: env('INTEROP_CLIENT_PKJWT_ID'), jwk: JSON.parse(env('INTEROP_CLIENT_PKJWT_PRIVATE_JWK')) },
}
// An ES256 key with the registered key's kid that Latchkey never saw.
const strangerJWK = JSON.parse(env('INTEROP_STRANGER_PRIVATE_JWK'))
// tokens.refreshGraceWindow of the server under test.
const refreshGraceMs = Number(env('INTEROP_REFRESH_GRACE_MS'))

const ACR_PWD = 'urn:latchkey:acr:pwd'
const ACR_MFA = 'urn:latchkey:acr:mfa'
const SKEW = 120 // seconds of clock tolerance for auth_time / iat
const STEP_TIMEOUT_MS = 10_000

// ---------------------------------------------------------------------------
// Browser: fetch with redirect: 'manual' and a cookie jar keyed by name and
// path (Latchkey's cookies are host-only, Path=/).

class Browser {
  constructor() {
    this.cookies = new Map() // name -> {value, path}
    this.log = []
  }

  cookieHeader(url) {
    const path = new URL(url).pathname
    const parts = []
    for (const [name, c] of this.cookies) {
      if (path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : c.path + '/')) {
        parts.push(`${name}=${c.value}`)
      }
    }
    return parts.join('; ')
  }

  store(res) {
    for (const sc of res.headers.getSetCookie()) {
      const [pair, ...attrs] = sc.split(';').map((s) => s.trim())
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq)
      const value = pair.slice(eq + 1)
      let path = '/'
      let expired = value === ''
      for (const a of attrs) {
        const [k, v = ''] = a.split('=')
        if (k.toLowerCase() === 'path') path = v || '/'
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true
      }
      if (expired) this.cookies.delete(name)
      else this.cookies.set(name, { value, path })
    }
  }

  async request(url, init = {}) {
    const headers = new Headers(init.headers)
    const cookie = this.cookieHeader(url)
    if (cookie) headers.set('cookie', cookie)
    const res = await fetch(url, {
      ...init,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    })
    this.store(res)
    const body = await res.text()
    this.log.push(`${init.method ?? 'GET'} ${redact(url)} -> ${res.status}`)
    return { res, body }
  }
}

function redact(url) {
  const u = new URL(url)
  for (const k of ['code', 'code_verifier']) if (u.searchParams.has(k)) u.searchParams.set(k, '…')
  return u.toString()
}

function decodeEntities(s) {
  return s
    .replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n) => String.fromCodePoint(parseInt(n, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
}

function attr(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}="([^"]*)"`, 'i'))
  return m ? decodeEntities(m[1]) : undefined
}

// parseForm returns the action and the hidden inputs of the first form.
function parseForm(html) {
  const form = html.match(/<form\b[^>]*>/i)
  if (!form) return undefined
  const fields = new URLSearchParams()
  for (const [input] of html.matchAll(/<input\b[^>]*>/gi)) {
    if ((attr(input, 'type') ?? 'text').toLowerCase() !== 'hidden') continue
    fields.append(attr(input, 'name'), attr(input, 'value') ?? '')
  }
  return { action: attr(form[0], 'action'), method: (attr(form[0], 'method') ?? 'get').toLowerCase(), fields }
}

// signIn plays the user agent from the authorization URL until the
// response reaches the app's redirect_uri, posting the login form when asked.
// It returns either {kind: 'redirect', url} (a URL to hand to openid-client;
// never fetched) or {kind: 'form_post', request} (the POST a browser would
// send to the redirect_uri, as a Request). Any other page with a form goes
// to onPage({url, page, form, action}), which returns the fields to post to
// the form's action (or nothing: the page is unexpected).
async function signIn(browser, authorizationUrl, creds = { username, password }, onPage = undefined) {
  let url = authorizationUrl.toString()
  let method = 'GET'
  let body
  let loginPosted = false
  for (let step = 0; step < 10; step++) {
    const { res, body: page } = await browser.request(url, body ? { method, body } : { method })
    body = undefined
    method = 'GET'
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get('location')
      assert.ok(location, `redirect without Location from ${redact(url)}`)
      const next = new URL(location, url)
      if (next.toString().startsWith(redirectUri)) {
        assert.equal(res.status, 303, 'the redirect to the app should be a 303 See Other')
        return { kind: 'redirect', url: next, loginPosted, status: res.status, headers: res.headers }
      }
      url = next.toString()
      continue
    }
    assert.equal(res.status, 200, `unexpected ${res.status} from ${redact(url)}:\n${page.slice(0, 2000)}`)
    const form = parseForm(page)
    assert.ok(form, `no form on the page from ${redact(url)}:\n${page.slice(0, 2000)}`)
    const action = new URL(form.action ?? url, url).toString()
    if (action.startsWith(redirectUri)) {
      // form_post response mode: the page would auto-submit this form.
      assert.equal(form.method, 'post')
      const request = new Request(action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.fields.toString(),
      })
      return { kind: 'form_post', request, fields: form.fields, loginPosted, headers: res.headers }
    }
    if (/name="password"/.test(page)) {
      assert.ok(!loginPosted, `login form shown again after posting it:\n${page.slice(0, 2000)}`)
      assert.ok(form.fields.get('req'), 'login form has no req')
      assert.ok(form.fields.get('csrf'), 'login form has no csrf')
      const fields = new URLSearchParams({
        req: form.fields.get('req'),
        csrf: form.fields.get('csrf'),
        username: creds.username,
        password: creds.password,
      })
      url = action
      method = 'POST'
      body = fields
      loginPosted = true
      continue
    }
    const fields = onPage && (await onPage({ url, page, form, action }))
    if (fields) {
      url = action
      method = 'POST'
      body = fields
      continue
    }
    assert.fail(`unexpected page from ${redact(url)}:\n${page.slice(0, 2000)}`)
  }
  assert.fail(`no answer to the app after 10 steps: ${browser.log.join(', ')}`)
}

// ---------------------------------------------------------------------------
// openid-client helpers

// fetchRecorder is a customFetch that records the URLs openid-client asks
// for, so a test can see that jwks_uri was really fetched.
function fetchRecorder() {
  const urls = []
  const fn = (url, options) => {
    urls.push(String(url))
    return fetch(url, options)
  }
  return { urls, fn }
}

async function discover(clientId, metadata, auth) {
  const rec = fetchRecorder()
  const config = await client.discovery(new URL(issuer), clientId, metadata, auth, {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    [client.customFetch]: rec.fn,
    timeout: 10,
  })
  return { config, fetched: rec.urls }
}

async function authorizationParams(extra = {}) {
  const codeVerifier = client.randomPKCECodeVerifier()
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier)
  const nonce = client.randomNonce()
  const state = client.randomState()
  const params = {
    redirect_uri: redirectUri,
    scope: 'openid profile email groups',
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    nonce,
    state,
    ...extra,
  }
  return { params, codeVerifier, nonce, state }
}

// assertIDTokenClaims checks the claims of a fresh login; acr and amr are
// those of a password login unless given (amrIncludes: values amr must hold).
function assertIDTokenClaims(claims, { clientId, nonce, startedAt, acr = ACR_PWD, amrIncludes }) {
  const now = Math.floor(Date.now() / 1000)
  assert.equal(claims.iss, issuer)
  assert.ok(claims.aud === clientId || (Array.isArray(claims.aud) && claims.aud.includes(clientId)), `aud ${JSON.stringify(claims.aud)}`)
  assert.equal(typeof claims.sub, 'string')
  assert.ok(claims.sub.length > 0)
  assert.equal(claims.nonce, nonce)
  assert.equal(typeof claims.auth_time, 'number', 'auth_time is a number')
  assert.ok(claims.auth_time >= startedAt - SKEW && claims.auth_time <= now + SKEW,
    `auth_time ${claims.auth_time} not within the login (started ${startedAt}, now ${now})`)
  assert.ok(claims.iat >= startedAt - SKEW && claims.iat <= now + SKEW, `iat ${claims.iat}`)
  assert.ok(claims.exp > now, `exp ${claims.exp} is in the past`)
  assert.equal(claims.acr, acr)
  if (amrIncludes === undefined) {
    assert.deepEqual(claims.amr, ['pwd'])
  } else {
    assert.ok(Array.isArray(claims.amr), `amr ${JSON.stringify(claims.amr)} is not an array`)
    for (const v of amrIncludes) assert.ok(claims.amr.includes(v), `amr ${JSON.stringify(claims.amr)} lacks ${v}`)
  }
}

async function assertUserInfo(config, tokens, sub) {
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, sub)
  assert.equal(userinfo.sub, sub)
  assert.equal(userinfo.email, email)
  assert.equal(userinfo.email_verified, true)
  assert.ok(Array.isArray(userinfo.groups), `groups ${JSON.stringify(userinfo.groups)}`)
  assert.ok(userinfo.groups.includes(group), `groups ${JSON.stringify(userinfo.groups)} lacks ${group}`)
  return userinfo
}

// fullFlow: a fresh browser, the login form posted, the code redeemed by
// openid-client with the given client authentication, the ID token checked,
// userinfo fetched.
async function fullFlow(t, { clientId, metadata, auth, extra = {} }) {
  const startedAt = Math.floor(Date.now() / 1000)
  const { config, fetched } = await discover(clientId, metadata, auth)
  const { params, codeVerifier, nonce, state } = await authorizationParams(extra)
  const authUrl = client.buildAuthorizationUrl(config, params)
  assert.ok(authUrl.toString().startsWith(config.serverMetadata().authorization_endpoint))
  const browser = new Browser()
  const answer = await signIn(browser, authUrl)
  assert.ok(answer.loginPosted, 'a fresh browser must see the login form')
  const callback = answer.kind === 'redirect' ? answer.url : answer.request
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  })
  assert.equal(tokens.token_type.toLowerCase(), 'bearer')
  assert.ok(tokens.access_token)
  assert.ok(tokens.id_token)
  const claims = tokens.claims()
  assertIDTokenClaims(claims, { clientId, nonce, startedAt })
  // enableNonRepudiationChecks: the ID token's signature was verified with
  // a key from jwks_uri, which openid-client fetched.
  assert.ok(fetched.includes(config.serverMetadata().jwks_uri),
    `jwks_uri was not fetched; fetched: ${fetched.join(', ')}`)
  const userinfo = await assertUserInfo(config, tokens, claims.sub)
  t.diagnostic(`${clientId}: sub=${claims.sub} acr=${claims.acr} amr=${JSON.stringify(claims.amr)} groups=${JSON.stringify(userinfo.groups)}`)
  return { config, tokens, claims, answer, browser }
}

async function rejects(promise, check) {
  let err
  try {
    await promise
  } catch (e) {
    err = e
  }
  assert.ok(err, 'expected openid-client to reject')
  check(err)
  return err
}

// ---------------------------------------------------------------------------

test('discovery', async () => {
  const { config } = await discover(clients.generated.id, clients.generated.secret)
  const md = config.serverMetadata()
  assert.equal(md.issuer, issuer)
  const base = issuer.replace(/\/$/, '')
  assert.equal(md.authorization_endpoint, base + '/authorize')
  assert.equal(md.token_endpoint, base + '/token')
  assert.equal(md.userinfo_endpoint, base + '/userinfo')
  assert.equal(md.jwks_uri, base + '/keys')
  assert.equal(md.authorization_response_iss_parameter_supported, true)
  assert.ok(md.response_types_supported.includes('code'))
  assert.ok(md.response_modes_supported.includes('form_post'))
  assert.ok(md.code_challenge_methods_supported.includes('S256'))
  for (const m of ['client_secret_basic', 'client_secret_post', 'none']) {
    assert.ok(md.token_endpoint_auth_methods_supported.includes(m), `token_endpoint_auth_methods_supported lacks ${m}`)
  }
  assert.ok(md.id_token_signing_alg_values_supported.includes('RS256'))
  assert.ok(md.scopes_supported.includes('openid'))
  assert.ok(md.scopes_supported.includes('groups'))
  // The JWKS the ID tokens are checked against.
  const res = await fetch(md.jwks_uri, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) })
  assert.equal(res.status, 200)
  const jwks = await res.json()
  assert.ok(jwks.keys.some((k) => k.kty === 'RSA' && k.use !== 'enc'), 'no RSA signing key in the JWKS')
  for (const k of jwks.keys) {
    assert.equal(k.d, undefined, 'private key material in the JWKS')
  }
})

test('code + PKCE, client_secret_basic (registered as client_secret_basic)', async (t) => {
  const c = clients.basic
  const { config, answer } = await fullFlow(t, { clientId: c.id, metadata: c.secret, auth: client.ClientSecretBasic(c.secret) })
  assert.equal(answer.kind, 'redirect')
  assert.equal(answer.url.searchParams.get('iss'), issuer)
  assert.equal(config.clientMetadata().client_id, c.id)
})

test('code + PKCE, client_secret_post (registered as client_secret_post)', async (t) => {
  const c = clients.post
  await fullFlow(t, { clientId: c.id, metadata: c.secret, auth: client.ClientSecretPost(c.secret) })
})

test('a client registered for one auth method is refused with the other (invalid_client)', async () => {
  for (const [c, auth] of [
    [clients.basic, client.ClientSecretPost(clients.basic.secret)],
    [clients.post, client.ClientSecretBasic(clients.post.secret)],
  ]) {
    const { config } = await discover(c.id, c.secret, auth)
    const { params, codeVerifier, nonce, state } = await authorizationParams()
    const answer = await signIn(new Browser(), client.buildAuthorizationUrl(config, params))
    let failure
    await rejects(
      client.authorizationCodeGrant(config, answer.url, { pkceCodeVerifier: codeVerifier, expectedNonce: nonce, expectedState: state }),
      (err) => { failure = err },
    )
    // RFC 6749 §5.2: 401 with WWW-Authenticate; openid-client then throws
    // WWWAuthenticateChallengeError (the challenge wins over the body).
    assert.ok(failure instanceof client.WWWAuthenticateChallengeError || failure instanceof client.ResponseBodyError, `${c.id}: ${failure}`)
    assert.equal(failure.status, 401)
    if (failure instanceof client.WWWAuthenticateChallengeError) {
      assert.equal(failure.cause[0].scheme, 'basic', JSON.stringify(failure.cause))
      const body = await failure.response.json()
      assert.equal(body.error, 'invalid_client', `${c.id}: ${JSON.stringify(body)}`)
    } else {
      assert.equal(failure.error, 'invalid_client', `${c.id}: ${failure.error}: ${failure.error_description}`)
    }
  }
})

test('code + PKCE, generated secret, no registered method: basic and post both work', async (t) => {
  const c = clients.generated
  await fullFlow(t, { clientId: c.id, metadata: c.secret, auth: client.ClientSecretBasic(c.secret) })
  // openid-client's default client authentication is client_secret_post.
  await fullFlow(t, { clientId: c.id, metadata: c.secret })
})

test('code + PKCE, secret from --secret-stdin', async (t) => {
  const c = clients.stdin
  await fullFlow(t, { clientId: c.id, metadata: c.secret, auth: client.ClientSecretBasic(c.secret) })
})

test('code + PKCE, public client with client.None()', async (t) => {
  const c = clients.public
  const { tokens } = await fullFlow(t, { clientId: c.id, metadata: { token_endpoint_auth_method: 'none' }, auth: client.None() })
  assert.ok(tokens.access_token)
})

test('response_mode=form_post', async (t) => {
  const c = clients.basic
  const { answer } = await fullFlow(t, {
    clientId: c.id,
    metadata: c.secret,
    auth: client.ClientSecretBasic(c.secret),
    extra: { response_mode: 'form_post' },
  })
  assert.equal(answer.kind, 'form_post', 'form_post must not redirect')
  assert.equal(answer.fields.get('iss'), issuer)
  assert.ok(answer.fields.get('code'))
  assert.ok(answer.fields.get('state'))
  assert.equal(answer.headers.get('cache-control'), 'no-store')
  assert.match(answer.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/)
})

test('form_post with a wrong iss is rejected by openid-client', async () => {
  const c = clients.basic
  const { config } = await discover(c.id, c.secret, client.ClientSecretBasic(c.secret))
  const { params, codeVerifier, nonce, state } = await authorizationParams({ response_mode: 'form_post' })
  const answer = await signIn(new Browser(), client.buildAuthorizationUrl(config, params))
  assert.equal(answer.kind, 'form_post')
  const fields = new URLSearchParams(answer.fields)
  fields.set('iss', 'http://evil.example')
  const forged = new Request(answer.request.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: fields.toString(),
  })
  await rejects(
    client.authorizationCodeGrant(config, forged, { pkceCodeVerifier: codeVerifier, expectedNonce: nonce, expectedState: state }),
    (err) => assertIssRejected(err, /unexpected "iss"/),
  )
})

function assertIssRejected(err, re) {
  assert.ok(err instanceof client.ClientError, `not a ClientError: ${err}`)
  assert.equal(err.code, 'OAUTH_INVALID_RESPONSE', `${err.code}: ${err.message}`)
  assert.match(err.cause?.message ?? '', re)
}

test('iss on the callback: a wrong or missing iss is rejected, the right one accepted', async () => {
  const c = clients.generated
  const { config } = await discover(c.id, c.secret, client.ClientSecretBasic(c.secret))
  const { params, codeVerifier, nonce, state } = await authorizationParams()
  const answer = await signIn(new Browser(), client.buildAuthorizationUrl(config, params))
  assert.equal(answer.kind, 'redirect')
  assert.equal(answer.url.searchParams.get('iss'), issuer)
  const checks = { pkceCodeVerifier: codeVerifier, expectedNonce: nonce, expectedState: state }

  const wrong = new URL(answer.url)
  wrong.searchParams.set('iss', issuer.replace('://', '://attacker.'))
  await rejects(client.authorizationCodeGrant(config, wrong, checks), (err) => assertIssRejected(err, /unexpected "iss"/))

  const missing = new URL(answer.url)
  missing.searchParams.delete('iss')
  await rejects(client.authorizationCodeGrant(config, missing, checks), (err) => assertIssRejected(err, /"iss" \(issuer\) missing/))

  // openid-client refused before the token request, so the code is unused.
  const tokens = await client.authorizationCodeGrant(config, answer.url, checks)
  assert.equal(tokens.claims().nonce, nonce)
})

test('enableNonRepudiationChecks is live: a tampered ID token signature is rejected', async () => {
  // Flip bits in the middle of the ID token's signature on its way from the
  // token endpoint: without the jwks_uri check this would be accepted.
  const c = clients.basic
  const { config } = await discover(c.id, c.secret, client.ClientSecretBasic(c.secret))
  const md = config.serverMetadata()
  config[client.customFetch] = async (url, options) => {
    const res = await fetch(url, options)
    if (String(url) !== md.token_endpoint || res.status !== 200) return res
    const body = await res.json()
    const [h, p, sig] = body.id_token.split('.')
    const i = Math.floor(sig.length / 2)
    body.id_token = [h, p, sig.slice(0, i) + (sig[i] === 'A' ? 'B' : 'A') + sig.slice(i + 1)].join('.')
    return new Response(JSON.stringify(body), { status: 200, headers: res.headers })
  }
  const { params, codeVerifier, nonce, state } = await authorizationParams()
  const answer = await signIn(new Browser(), client.buildAuthorizationUrl(config, params))
  await rejects(
    client.authorizationCodeGrant(config, answer.url, { pkceCodeVerifier: codeVerifier, expectedNonce: nonce, expectedState: state }),
    (err) => {
      assert.ok(err instanceof client.ClientError, `not a ClientError: ${err}`)
      assert.match(err.cause?.message ?? err.message, /signature verification failed/)
    },
  )
})

test('a wrong PKCE code_verifier is refused with invalid_grant', async () => {
  const c = clients.basic
  const { config } = await discover(c.id, c.secret, client.ClientSecretBasic(c.secret))
  const { params, nonce, state } = await authorizationParams()
  const answer = await signIn(new Browser(), client.buildAuthorizationUrl(config, params))
  await rejects(
    client.authorizationCodeGrant(config, answer.url, {
      pkceCodeVerifier: client.randomPKCECodeVerifier(),
      expectedNonce: nonce,
      expectedState: state,
    }),
    (err) => {
      assert.ok(err instanceof client.ResponseBodyError, `not a ResponseBodyError: ${err}`)
      assert.equal(err.error, 'invalid_grant', `${err.error}: ${err.error_description}`)
      assert.equal(err.status, 400)
    },
  )
})

test('the SSO session: a second authorization skips the login form, keeps auth_time', async () => {
  const c = clients.generated
  const { config } = await discover(c.id, c.secret, client.ClientSecretBasic(c.secret))
  const browser = new Browser()
  const first = await authorizationParams()
  const a1 = await signIn(browser, client.buildAuthorizationUrl(config, first.params))
  assert.ok(a1.loginPosted)
  const t1 = await client.authorizationCodeGrant(config, a1.url, {
    pkceCodeVerifier: first.codeVerifier, expectedNonce: first.nonce, expectedState: first.state,
  })
  const second = await authorizationParams()
  const a2 = await signIn(browser, client.buildAuthorizationUrl(config, second.params))
  assert.ok(!a2.loginPosted, 'the session cookie should skip the login form')
  const t2 = await client.authorizationCodeGrant(config, a2.url, {
    pkceCodeVerifier: second.codeVerifier, expectedNonce: second.nonce, expectedState: second.state,
  })
  assert.equal(t2.claims().sub, t1.claims().sub)
  assert.equal(t2.claims().auth_time, t1.claims().auth_time)
  assert.equal(t2.claims().acr, ACR_PWD)
  assert.deepEqual(t2.claims().amr, ['pwd'])

  // max_age=0 (OIDC Core 3.1.2.1: as prompt=login) asks for the password
  // again despite the session; openid-client checks auth_time against it.
  const third = await authorizationParams({ max_age: '0' })
  const a3 = await signIn(browser, client.buildAuthorizationUrl(config, third.params))
  assert.ok(a3.loginPosted, 'max_age=0 must show the login form again')
  const t3 = await client.authorizationCodeGrant(config, a3.url, {
    pkceCodeVerifier: third.codeVerifier, expectedNonce: third.nonce, expectedState: third.state, maxAge: 0,
  })
  assert.ok(t3.claims().auth_time >= t1.claims().auth_time)
})

test('without the groups scope, userinfo has no groups', async () => {
  const c = clients.generated
  const { config } = await discover(c.id, c.secret, client.ClientSecretBasic(c.secret))
  const { params, codeVerifier, nonce, state } = await authorizationParams({ scope: 'openid email' })
  const answer = await signIn(new Browser(), client.buildAuthorizationUrl(config, params))
  const tokens = await client.authorizationCodeGrant(config, answer.url, { pkceCodeVerifier: codeVerifier, expectedNonce: nonce, expectedState: state })
  const sub = tokens.claims().sub
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, sub)
  assert.equal(userinfo.email, email)
  assert.equal(userinfo.groups, undefined, `groups without the groups scope: ${JSON.stringify(userinfo.groups)}`)
})

test('an authorization error carries iss and reaches openid-client as AuthorizationResponseError', async () => {
  // No code_challenge: require_pkce is on by default.
  const c = clients.public
  const { config } = await discover(c.id, { token_endpoint_auth_method: 'none' }, client.None())
  const state = client.randomState()
  const url = client.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid', state })
  const answer = await signIn(new Browser(), url)
  assert.equal(answer.kind, 'redirect')
  assert.equal(answer.loginPosted, false)
  assert.equal(answer.url.searchParams.get('iss'), issuer)
  await rejects(client.authorizationCodeGrant(config, answer.url, { expectedState: state }), (err) => {
    assert.ok(err instanceof client.AuthorizationResponseError, `not an AuthorizationResponseError: ${err}`)
    assert.equal(err.error, 'invalid_request', `${err.error}: ${err.error_description}`)
  })
})

// ---------------------------------------------------------------------------
// Refresh tokens, introspection, revocation, client_credentials,
// private_key_jwt (issue 6).

const OFFLINE_SCOPE = 'openid profile email groups offline_access'

function scopeSet(scope) {
  return [...new Set((scope ?? '').split(' ').filter(Boolean))].sort()
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

// oauthError reduces what openid-client throws for an error response to
// {status, error}: a ResponseBodyError, or a WWWAuthenticateChallengeError
// (401 with WWW-Authenticate wins over the body) whose body is read here.
async function oauthError(err) {
  if (err instanceof client.ResponseBodyError) {
    return { status: err.status, error: err.error, description: err.error_description }
  }
  if (err instanceof client.WWWAuthenticateChallengeError) {
    let body = {}
    try {
      body = await err.response.clone().json()
    } catch {
      // no JSON body: take the challenge's error parameter
    }
    return {
      status: err.status,
      error: body.error ?? err.cause?.[0]?.parameters?.error,
      description: body.error_description ?? err.cause?.[0]?.parameters?.error_description,
    }
  }
  assert.fail(`not an OAuth error response: ${err?.stack ?? err}`)
}

// rejectsWith expects an OAuth error response with the given error code
// (and status, when given).
async function rejectsWith(promise, error, status) {
  let err
  try {
    await promise
  } catch (e) {
    err = e
  }
  assert.ok(err, `expected openid-client to reject with ${error}`)
  const got = await oauthError(err)
  assert.equal(got.error, error, `want ${error}, got ${got.status} ${got.error}: ${got.description}`)
  if (status !== undefined) assert.equal(got.status, status, `${got.error}: ${got.description}`)
  return got
}

// offlineFlow: fullFlow asking for offline_access (by default for rp-basic
// with client_secret_basic); the answer must carry an opaque refresh token.
async function offlineFlow(t, c = clients.basic, auth = client.ClientSecretBasic(c.secret), metadata = c.secret) {
  const r = await fullFlow(t, { clientId: c.id, metadata, auth, extra: { scope: OFFLINE_SCOPE } })
  assert.ok(r.tokens.refresh_token, 'no refresh_token for scope offline_access')
  assert.equal(typeof r.tokens.refresh_token, 'string')
  assert.ok(!r.tokens.refresh_token.includes('.'), 'the refresh token should be opaque, not a JWT')
  return r
}

function assertRefreshedIDToken(refreshed, original, clientId) {
  const rc = refreshed.claims()
  assert.ok(rc, 'the refresh response has no id_token')
  const now = Math.floor(Date.now() / 1000)
  assert.equal(rc.iss, issuer)
  assert.ok(rc.aud === clientId || (Array.isArray(rc.aud) && rc.aud.includes(clientId)), `aud ${JSON.stringify(rc.aud)}`)
  assert.equal(rc.sub, original.sub)
  assert.equal(rc.auth_time, original.auth_time, 'auth_time changed on refresh')
  assert.equal(rc.sid, original.sid, 'sid changed on refresh')
  assert.equal(rc.nonce, undefined, 'a refreshed ID token must not carry the nonce')
  assert.equal(rc.acr, original.acr)
  assert.deepEqual(rc.amr, original.amr)
  assert.ok(rc.iat >= original.iat && rc.iat <= now + SKEW, `iat ${rc.iat}`)
  assert.ok(rc.exp > now, `exp ${rc.exp} is in the past`)
  return rc
}

test('discovery lists introspection, revocation, the grants and private_key_jwt', async () => {
  const { config } = await discover(clients.generated.id, clients.generated.secret)
  const md = config.serverMetadata()
  const base = issuer.replace(/\/$/, '')
  assert.equal(md.introspection_endpoint, base + '/introspect')
  assert.equal(md.revocation_endpoint, base + '/revoke')
  assert.deepEqual([...md.grant_types_supported].sort(), ['authorization_code', 'client_credentials', 'refresh_token'])
  assert.deepEqual([...md.token_endpoint_auth_methods_supported].sort(),
    ['client_secret_basic', 'client_secret_post', 'none', 'private_key_jwt'])
  assert.ok(md.token_endpoint_auth_signing_alg_values_supported.includes('ES256'))
  for (const a of ['none', 'HS256']) {
    assert.ok(!md.token_endpoint_auth_signing_alg_values_supported.includes(a), `assertions signed with ${a} are advertised`)
  }
  assert.ok(md.introspection_endpoint_auth_methods_supported.includes('private_key_jwt'))
  assert.ok(!md.introspection_endpoint_auth_methods_supported.includes('none'), 'introspection must need client authentication')
  assert.ok(md.scopes_supported.includes('offline_access'))
})

test('refresh_token: rotation, a new ID token (same sub, auth_time, sid; no nonce), the new access token works', async (t) => {
  const c = clients.basic
  const { config, tokens, claims } = await offlineFlow(t)
  assert.equal(typeof claims.sid, 'string', 'the ID token has no sid')

  const r1 = await client.refreshTokenGrant(config, tokens.refresh_token)
  assert.equal(r1.token_type.toLowerCase(), 'bearer')
  assert.ok(r1.refresh_token, 'no new refresh token: rotation is on every use')
  assert.notEqual(r1.refresh_token, tokens.refresh_token)
  assert.ok(r1.access_token)
  assert.notEqual(r1.access_token, tokens.access_token)
  const c1 = assertRefreshedIDToken(r1, claims, c.id)
  await assertUserInfo(config, r1, c1.sub)

  // The successor rotates in turn.
  const r2 = await client.refreshTokenGrant(config, r1.refresh_token)
  assert.ok(r2.refresh_token)
  assert.ok(![tokens.refresh_token, r1.refresh_token].includes(r2.refresh_token), 'a refresh token came back twice')
  assertRefreshedIDToken(r2, claims, c.id)
  await assertUserInfo(config, r2, claims.sub)

  // A narrower scope narrows the access token, not the family.
  const r3 = await client.refreshTokenGrant(config, r2.refresh_token, { scope: 'openid email' })
  const i3 = await client.tokenIntrospection(config, r3.access_token)
  assert.deepEqual(scopeSet(i3.scope), ['email', 'openid'])
  const ir3 = await client.tokenIntrospection(config, r3.refresh_token)
  assert.deepEqual(scopeSet(ir3.scope), scopeSet(OFFLINE_SCOPE))
  // ... and a scope that was not granted is invalid_scope.
  await rejectsWith(client.refreshTokenGrant(config, r3.refresh_token, { scope: 'openid api:read' }), 'invalid_scope', 400)
})

test('refresh_token: two concurrent refreshes of one token both succeed with the same successor', async (t) => {
  const { config, tokens, claims } = await offlineFlow(t)
  const [a, b] = await Promise.all([
    client.refreshTokenGrant(config, tokens.refresh_token),
    client.refreshTokenGrant(config, tokens.refresh_token),
  ])
  assert.ok(a.refresh_token)
  assert.equal(a.refresh_token, b.refresh_token, 'two refreshes inside the grace window got different successors')
  assert.notEqual(a.refresh_token, tokens.refresh_token)
  for (const r of [a, b]) {
    assertRefreshedIDToken(r, claims, clients.basic.id)
    await assertUserInfo(config, r, claims.sub)
  }
  // The common successor is the live token of the family.
  const next = await client.refreshTokenGrant(config, a.refresh_token)
  assert.ok(next.refresh_token)
  assert.notEqual(next.refresh_token, a.refresh_token)
})

test('refresh_token: reuse after the grace window is invalid_grant and revokes the family', async (t) => {
  const { config, tokens } = await offlineFlow(t)
  const r1 = await client.refreshTokenGrant(config, tokens.refresh_token)
  // Inside the window the rotated token still answers its successor.
  const again = await client.refreshTokenGrant(config, tokens.refresh_token)
  assert.equal(again.refresh_token, r1.refresh_token)

  await sleep(refreshGraceMs + 400)
  await rejectsWith(client.refreshTokenGrant(config, tokens.refresh_token), 'invalid_grant', 400)
  // The successor, never used, went with its family.
  await rejectsWith(client.refreshTokenGrant(config, r1.refresh_token), 'invalid_grant', 400)
  const i = await client.tokenIntrospection(config, r1.refresh_token)
  assert.deepEqual(i, { active: false })
})

test('introspection of access and refresh tokens; revocation makes them inactive', async (t) => {
  const c = clients.basic
  const { config, tokens, claims } = await offlineFlow(t)
  const now = Math.floor(Date.now() / 1000)

  const at = await client.tokenIntrospection(config, tokens.access_token)
  assert.equal(at.active, true)
  assert.equal(at.sub, claims.sub)
  assert.equal(at.client_id, c.id)
  assert.deepEqual(scopeSet(at.scope), scopeSet(OFFLINE_SCOPE))
  assert.equal(typeof at.exp, 'number')
  assert.ok(at.exp > now, `exp ${at.exp}`)
  assert.equal(at.iss, issuer)
  assert.equal(at.username, username)
  assert.equal(at.token_type?.toLowerCase(), 'bearer')

  const rt = await client.tokenIntrospection(config, tokens.refresh_token)
  assert.equal(rt.active, true)
  assert.equal(rt.sub, claims.sub)
  assert.equal(rt.client_id, c.id)
  assert.deepEqual(scopeSet(rt.scope), scopeSet(OFFLINE_SCOPE))
  assert.equal(typeof rt.exp, 'number')
  assert.ok(rt.exp > now, `exp ${rt.exp}`)

  // Another client does not see them.
  const other = (await discover(clients.post.id, clients.post.secret, client.ClientSecretPost(clients.post.secret))).config
  assert.deepEqual(await client.tokenIntrospection(other, tokens.access_token), { active: false })
  assert.deepEqual(await client.tokenIntrospection(other, tokens.refresh_token), { active: false })
  // Unknown tokens are inactive; revoking one is 200.
  assert.deepEqual(await client.tokenIntrospection(config, 'not-a-token'), { active: false })
  assert.deepEqual(await client.tokenIntrospection(config, 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln'), { active: false })
  await client.tokenRevocation(config, 'not-a-token')

  // Revoking the access token: inactive at once, refused at userinfo; the
  // refresh token lives on.
  await client.tokenRevocation(config, tokens.access_token, { token_type_hint: 'access_token' })
  assert.deepEqual(await client.tokenIntrospection(config, tokens.access_token), { active: false })
  await rejectsWith(client.fetchUserInfo(config, tokens.access_token, claims.sub), 'invalid_token', 401)
  assert.equal((await client.tokenIntrospection(config, tokens.refresh_token)).active, true)

  // Revoking the refresh token.
  await client.tokenRevocation(config, tokens.refresh_token, { token_type_hint: 'refresh_token' })
  assert.deepEqual(await client.tokenIntrospection(config, tokens.refresh_token), { active: false })
  await rejectsWith(client.refreshTokenGrant(config, tokens.refresh_token), 'invalid_grant', 400)
  // Revoking twice is still 200.
  await client.tokenRevocation(config, tokens.refresh_token)
})

test('introspection needs client authentication: a public client is invalid_client', async (t) => {
  const c = clients.public
  const { config, tokens } = await fullFlow(t, { clientId: c.id, metadata: { token_endpoint_auth_method: 'none' }, auth: client.None() })
  await rejectsWith(client.tokenIntrospection(config, tokens.access_token), 'invalid_client', 401)
  // A public client may revoke its own token (RFC 7009 §5).
  await client.tokenRevocation(config, tokens.access_token)
  await rejectsWith(client.fetchUserInfo(config, tokens.access_token, client.skipSubjectCheck), 'invalid_token', 401)
})

test('revoking a refresh token revokes its family', async (t) => {
  const { config, tokens } = await offlineFlow(t)
  const r1 = await client.refreshTokenGrant(config, tokens.refresh_token)
  const r2 = await client.refreshTokenGrant(config, r1.refresh_token)
  // Revoke a rotated member: the live one goes too.
  await client.tokenRevocation(config, r1.refresh_token)
  await rejectsWith(client.refreshTokenGrant(config, r2.refresh_token), 'invalid_grant', 400)
  for (const rt of [tokens.refresh_token, r1.refresh_token, r2.refresh_token]) {
    assert.deepEqual(await client.tokenIntrospection(config, rt), { active: false })
  }

  // Revoke the live (first) token of a fresh family.
  const second = await offlineFlow(t)
  await client.tokenRevocation(second.config, second.tokens.refresh_token)
  await rejectsWith(client.refreshTokenGrant(second.config, second.tokens.refresh_token), 'invalid_grant', 400)

  // Another client's refresh token is not revoked by it.
  const third = await offlineFlow(t)
  const other = (await discover(clients.post.id, clients.post.secret, client.ClientSecretPost(clients.post.secret))).config
  try {
    await client.tokenRevocation(other, third.tokens.refresh_token)
  } catch (err) {
    // RFC 7009 §2.1 lets the server refuse (unauthorized_client).
    const got = await oauthError(err)
    assert.equal(got.error, 'unauthorized_client', `${got.status} ${got.error}: ${got.description}`)
  }
  assert.equal((await client.tokenIntrospection(third.config, third.tokens.refresh_token)).active, true)
  const r = await client.refreshTokenGrant(third.config, third.tokens.refresh_token)
  assert.ok(r.refresh_token)
})

test('client_credentials: an access token with the requested scope, no id_token or refresh_token', async () => {
  const c = clients.service
  const { config } = await discover(c.id, c.secret, client.ClientSecretBasic(c.secret))
  const tokens = await client.clientCredentialsGrant(config, { scope: 'api:read' })
  assert.equal(tokens.token_type.toLowerCase(), 'bearer')
  assert.ok(tokens.access_token)
  assert.equal(tokens.scope, 'api:read')
  assert.equal(tokens.id_token, undefined)
  assert.equal(tokens.refresh_token, undefined)
  assert.ok(tokens.expires_in > 0, `expires_in ${tokens.expires_in}`)

  const i = await client.tokenIntrospection(config, tokens.access_token)
  assert.equal(i.active, true)
  assert.equal(i.client_id, c.id)
  assert.equal(i.sub, c.id)
  assert.equal(i.scope, 'api:read')
  assert.equal(i.username, undefined, 'a client token has no user')

  // Without scope: everything registered. client_secret_post works too.
  const post = (await discover(c.id, c.secret, client.ClientSecretPost(c.secret))).config
  const all = await client.clientCredentialsGrant(post)
  assert.deepEqual(scopeSet(all.scope), ['api:read', 'api:write'])

  // Outside the registration, or a user's scope: invalid_scope.
  for (const scope of ['api:admin', 'api:read api:admin', 'openid', 'offline_access']) {
    await rejectsWith(client.clientCredentialsGrant(config, { scope }), 'invalid_scope', 400)
  }
  // No user behind it: userinfo refuses it.
  let err
  try {
    await client.fetchUserInfo(config, tokens.access_token, client.skipSubjectCheck)
  } catch (e) {
    err = e
  }
  assert.ok(err, 'userinfo accepted a client_credentials token')
  const got = await oauthError(err)
  assert.ok(['insufficient_scope', 'invalid_token'].includes(got.error), `${got.status} ${got.error}`)

  // Revocation of the client token.
  await client.tokenRevocation(config, tokens.access_token)
  assert.deepEqual(await client.tokenIntrospection(config, tokens.access_token), { active: false })
})

test('client_credentials needs the grant: unauthorized_client', async () => {
  const c = clients.basic
  const { config } = await discover(c.id, c.secret, client.ClientSecretBasic(c.secret))
  await rejectsWith(client.clientCredentialsGrant(config), 'unauthorized_client', 400)
})

// ---------------------------------------------------------------------------
// private_key_jwt

async function importSigningKey(jwk) {
  return crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
}

function b64u(x) {
  return Buffer.from(typeof x === 'string' ? x : new Uint8Array(x)).toString('base64url')
}

// signAssertion makes an RFC 7523 client assertion by hand (ES256; WebCrypto
// returns r||s, which is the JWS form).
async function signAssertion(jwk, claims) {
  const key = await importSigningKey(jwk)
  const header = { alg: 'ES256', typ: 'JWT', kid: jwk.kid }
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, new TextEncoder().encode(input))
  return `${input}.${b64u(sig)}`
}

function assertionClaims(clientId, aud) {
  const now = Math.floor(Date.now() / 1000)
  return { iss: clientId, sub: clientId, aud, jti: client.randomState(), iat: now, nbf: now, exp: now + 60 }
}

// postAssertion posts a form authenticated by client_assertion.
async function postAssertion(url, assertion, fields) {
  const body = new URLSearchParams({
    ...fields,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  })
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body,
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  })
  const text = await res.text()
  let json
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, json, text }
}

async function pkjwtAuth(jwk = clients.pkjwt.jwk) {
  return client.PrivateKeyJwt({ key: await importSigningKey(jwk), kid: jwk.kid })
}

test('private_key_jwt (ES256, registered jwks): code flow, refresh, introspection, revocation', async (t) => {
  const c = clients.pkjwt
  const metadata = { token_endpoint_auth_method: 'private_key_jwt' }
  const { config, tokens, claims } = await offlineFlow(t, c, await pkjwtAuth(), metadata)
  const r1 = await client.refreshTokenGrant(config, tokens.refresh_token)
  assert.notEqual(r1.refresh_token, tokens.refresh_token)
  assertRefreshedIDToken(r1, claims, c.id)
  await assertUserInfo(config, r1, claims.sub)

  const i = await client.tokenIntrospection(config, r1.access_token)
  assert.equal(i.active, true)
  assert.equal(i.client_id, c.id)
  assert.equal(i.sub, claims.sub)
  assert.equal((await client.tokenIntrospection(config, r1.refresh_token)).active, true)

  await client.tokenRevocation(config, r1.refresh_token)
  assert.deepEqual(await client.tokenIntrospection(config, r1.refresh_token), { active: false })
  await rejectsWith(client.refreshTokenGrant(config, r1.refresh_token), 'invalid_grant', 400)
})

test('private_key_jwt: a key that is not registered, or a client secret, is invalid_client', async () => {
  const c = clients.pkjwt
  const metadata = { token_endpoint_auth_method: 'private_key_jwt' }
  const stranger = (await discover(c.id, metadata, await pkjwtAuth(strangerJWK))).config
  await rejectsWith(client.tokenIntrospection(stranger, 'not-a-token'), 'invalid_client', 401)
  // The registered method is the only one.
  const secret = (await discover(c.id, 'guessed-secret', client.ClientSecretBasic('guessed-secret'))).config
  await rejectsWith(client.tokenIntrospection(secret, 'not-a-token'), 'invalid_client', 401)
})

test('private_key_jwt: a replayed assertion is refused; aud may be the issuer or the endpoint URL', async () => {
  const c = clients.pkjwt
  const base = issuer.replace(/\/$/, '')
  const introspect = base + '/introspect'
  const token = base + '/token'

  // aud = the issuer, used twice at /introspect.
  const a1 = await signAssertion(c.jwk, assertionClaims(c.id, issuer))
  const first = await postAssertion(introspect, a1, { token: 'not-a-token' })
  assert.equal(first.status, 200, first.text)
  assert.deepEqual(first.json, { active: false })
  const replay = await postAssertion(introspect, a1, { token: 'not-a-token' })
  assert.equal(replay.status, 401, `replayed assertion: ${replay.status} ${replay.text}`)
  assert.equal(replay.json?.error, 'invalid_client', replay.text)

  // aud = the endpoint URL, used twice there.
  const a2 = await signAssertion(c.jwk, assertionClaims(c.id, introspect))
  const ok = await postAssertion(introspect, a2, { token: 'not-a-token' })
  assert.equal(ok.status, 200, ok.text)
  const again = await postAssertion(introspect, a2, { token: 'not-a-token' })
  assert.equal(again.status, 401, `replayed assertion (aud ${introspect}): ${again.status} ${again.text}`)
  assert.equal(again.json?.error, 'invalid_client', again.text)
  // An assertion for /introspect is not accepted at /revoke (its aud names
  // neither the issuer, the token endpoint nor /revoke).
  const a2b = await signAssertion(c.jwk, assertionClaims(c.id, introspect))
  const elsewhere = await postAssertion(base + '/revoke', a2b, { token: 'not-a-token' })
  assert.equal(elsewhere.status, 401, `aud ${introspect} at /revoke: ${elsewhere.status} ${elsewhere.text}`)
  assert.equal(elsewhere.json?.error, 'invalid_client', elsewhere.text)

  // aud = the token endpoint: authenticated (the refresh token is bogus:
  // invalid_grant), then the replay is invalid_client.
  const a3 = await signAssertion(c.jwk, assertionClaims(c.id, token))
  const t1 = await postAssertion(token, a3, { grant_type: 'refresh_token', refresh_token: 'bogus' })
  assert.equal(t1.status, 400, t1.text)
  assert.equal(t1.json?.error, 'invalid_grant', t1.text)
  const t2 = await postAssertion(token, a3, { grant_type: 'refresh_token', refresh_token: 'bogus' })
  assert.equal(t2.status, 401, t2.text)
  assert.equal(t2.json?.error, 'invalid_client', t2.text)

  // A foreign audience is refused.
  const a4 = await signAssertion(c.jwk, assertionClaims(c.id, 'https://elsewhere.example'))
  const foreign = await postAssertion(introspect, a4, { token: 'not-a-token' })
  assert.equal(foreign.status, 401, foreign.text)
  assert.equal(foreign.json?.error, 'invalid_client', foreign.text)
})

// ---------------------------------------------------------------------------
// Second factors (issue 12): acr_values=urn:latchkey:acr:mfa with TOTP. The
// codes are computed here (RFC 6238), independently of Latchkey's
// pquerna/otp.

// mfa.totp in interop_test.go's config.
const TOTP_PERIOD_S = 30
const TOTP_DIGITS = 6
const RECOVERY_CODES = 10

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  const out = []
  let bits = 0
  let value = 0
  for (const ch of text.replace(/[\s=]/g, '').toUpperCase()) {
    const i = alphabet.indexOf(ch)
    if (i < 0) throw new Error(`not base32: ${JSON.stringify(ch)}`)
    value = ((value << 5) | i) & 0xffff
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out.push((value >>> bits) & 0xff)
    }
  }
  return Buffer.from(out)
}

// totp is the RFC 6238 code (HMAC-SHA1, RFC 4226 dynamic truncation) of
// key for one time step.
function totp(key, step, digits = TOTP_DIGITS) {
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(step))
  const mac = createHmac('sha1', key).update(counter).digest()
  const offset = mac[mac.length - 1] & 0x0f
  const n = mac.readUInt32BE(offset) & 0x7fffffff
  return String(n % 10 ** digits).padStart(digits, '0')
}

function timeStep(ms = Date.now()) {
  return Math.floor(ms / 1000 / TOTP_PERIOD_S)
}

test('the TOTP helper meets the RFC 6238 SHA1 vectors', () => {
  const key = base32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ')
  assert.equal(key.toString(), '12345678901234567890')
  for (const [time, code] of [[59, '94287082'], [1111111109, '07081804'], [1111111111, '14050471'],
    [1234567890, '89005924'], [2000000000, '69279037'], [20000000000, '65353130']]) {
    assert.equal(totp(key, Math.floor(time / 30), 8), code, `T=${time}`)
  }
})

test('acr_values=mfa: TOTP enrollment then a TOTP challenge; acr mfa, amr pwd+otp+mfa', async (t) => {
  const c = clients.generated
  const { config } = await discover(c.id, c.secret, client.ClientSecretBasic(c.secret))
  const md = config.serverMetadata()
  assert.ok(md.acr_values_supported?.includes(ACR_MFA), `acr_values_supported ${JSON.stringify(md.acr_values_supported)}`)

  // 1. A fresh browser, nothing enrolled: password, the enrollment page
  //    (QR code and key as text) confirmed with a code computed here, the
  //    recovery codes once, then back to the app.
  let startedAt = Math.floor(Date.now() / 1000)
  const first = await authorizationParams({ acr_values: ACR_MFA })
  let key
  let enrollStep
  let enrollCode
  const forms = [] // the action of every MFA form posted
  const a1 = await signIn(new Browser(), client.buildAuthorizationUrl(config, first.params), mfaUser,
    async ({ url, page, form, action }) => {
      const target = new URL(action).pathname
      forms.push(target)
      if (target === '/mfa/enroll') {
        assert.equal(new URL(url).pathname, '/mfa/enroll', `the enrollment form on ${redact(url)}`)
        assert.ok(new URL(url).searchParams.get('req'), 'the enrollment page has no req in its URL')
        assert.equal(key, undefined, `the enrollment page came back:\n${page.slice(0, 2000)}`)
        // The QR code: a PNG in a data: URL (html/template writes '+' as &#43;).
        const img = page.match(/<img\b[^>]*\bclass="qr"[^>]*>/i)
        const src = img && attr(img[0], 'src')
        assert.ok(src?.startsWith('data:image/png;base64,'), `no QR code (PNG data: URL) on the enrollment page:\n${page.slice(0, 2000)}`)
        const png = Buffer.from(src.slice('data:image/png;base64,'.length), 'base64')
        assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'the QR code is not a PNG')
        const m = page.match(/<code id="totp-secret">([A-Z2-7= ]+)<\/code>/)
        assert.ok(m, `no TOTP key as text on the enrollment page:\n${page.slice(0, 2000)}`)
        key = base32Decode(m[1])
        assert.ok(key.length >= 16, `a ${key.length}-byte TOTP key (RFC 4226: at least 128 bits)`)
        assert.ok(form.fields.get('req') && form.fields.get('csrf'), 'the enrollment form lacks req or csrf')
        enrollStep = timeStep()
        enrollCode = totp(key, enrollStep)
        const fields = new URLSearchParams(form.fields)
        fields.set('code', enrollCode)
        return fields
      }
      if (target === '/mfa/continue') {
        const codes = [...page.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((x) => x[1])
        assert.equal(codes.length, RECOVERY_CODES, `recovery codes shown: ${codes.length}`)
        assert.equal(new Set(codes).size, RECOVERY_CODES, 'the recovery codes are not distinct')
        assert.ok(form.fields.get('req') && form.fields.get('csrf'), 'the continue form lacks req or csrf')
        return form.fields
      }
      return undefined // any other page fails the sign-in
    })
  assert.ok(a1.loginPosted, 'a fresh browser must see the login form')
  assert.deepEqual(forms, ['/mfa/enroll', '/mfa/continue'])
  assert.equal(a1.kind, 'redirect')
  assert.equal(a1.url.searchParams.get('iss'), issuer)
  const t1 = await client.authorizationCodeGrant(config, a1.url, {
    pkceCodeVerifier: first.codeVerifier, expectedNonce: first.nonce, expectedState: first.state, idTokenExpected: true,
  })
  const c1 = t1.claims()
  assertIDTokenClaims(c1, { clientId: c.id, nonce: first.nonce, startedAt, acr: ACR_MFA, amrIncludes: ['pwd', 'otp', 'mfa'] })
  assert.equal((await client.fetchUserInfo(config, t1.access_token, c1.sub)).sub, c1.sub)
  t.diagnostic(`enrolled: sub=${c1.sub} acr=${c1.acr} amr=${JSON.stringify(c1.amr)}`)

  // 2. Another browser, same user: password, then only the code form. The
  //    enrollment code is refused (a code is never accepted twice); the
  //    next time step's code (within the server's ±1 step) is accepted.
  startedAt = Math.floor(Date.now() / 1000)
  const second = await authorizationParams({ acr_values: ACR_MFA })
  const b2 = new Browser()
  let challenges = 0
  const a2 = await signIn(b2, client.buildAuthorizationUrl(config, second.params), mfaUser,
    async ({ url, page, form, action }) => {
      challenges++
      assert.equal(challenges, 1, `the code form came back after a good code:\n${page.slice(0, 2000)}`)
      assert.equal(new URL(url).pathname, '/mfa', `want the code form on /mfa, got ${redact(url)}:\n${page.slice(0, 2000)}`)
      assert.equal(new URL(action).pathname, '/mfa')
      assert.ok(!page.includes('totp-secret'), 'an enrolled user was shown an enrollment key')
      assert.ok(form.fields.get('req') && form.fields.get('csrf'), 'the code form lacks req or csrf')

      const replay = new URLSearchParams(form.fields)
      replay.set('code', enrollCode)
      const stepAtReplay = timeStep()
      const { res, body } = await b2.request(action, { method: 'POST', body: replay })
      assert.equal(res.status, 400, `the enrollment code was not refused: ${res.status} ${res.headers.get('location') ?? ''}`)
      // Still within ±1 step: refused as used; later it is simply expired.
      assert.match(body, stepAtReplay - enrollStep <= 1 ? /already used/ : /not valid/)
      const again = parseForm(body)
      assert.ok(again && new URL(again.action, action).pathname === '/mfa', `no code form after the refusal:\n${body.slice(0, 2000)}`)

      assert.ok(timeStep() <= enrollStep + 2, 'over a minute since enrollment: the next step is out of the ±1 window')
      const fields = new URLSearchParams(again.fields)
      fields.set('code', totp(key, enrollStep + 1))
      return fields
    })
  assert.ok(a2.loginPosted, 'a fresh browser must see the login form')
  assert.equal(challenges, 1)
  assert.equal(a2.kind, 'redirect')
  const t2 = await client.authorizationCodeGrant(config, a2.url, {
    pkceCodeVerifier: second.codeVerifier, expectedNonce: second.nonce, expectedState: second.state, idTokenExpected: true,
  })
  const c2 = t2.claims()
  assertIDTokenClaims(c2, { clientId: c.id, nonce: second.nonce, startedAt, acr: ACR_MFA, amrIncludes: ['pwd', 'otp', 'mfa'] })
  assert.equal(c2.sub, c1.sub)
  assert.ok(c2.sid === undefined || c2.sid !== c1.sid, 'two browsers share one SSO session')
  t.diagnostic(`challenged: sub=${c2.sub} acr=${c2.acr} amr=${JSON.stringify(c2.amr)}`)
})
