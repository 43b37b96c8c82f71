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
}

const ACR_PWD = 'urn:latchkey:acr:pwd'
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
// send to the redirect_uri, as a Request).
async function signIn(browser, authorizationUrl, creds = { username, password }) {
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

function assertIDTokenClaims(claims, { clientId, nonce, startedAt }) {
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
  assert.equal(claims.acr, ACR_PWD)
  assert.deepEqual(claims.amr, ['pwd'])
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
