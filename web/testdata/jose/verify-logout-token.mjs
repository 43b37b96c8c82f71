// Verifies a back-channel logout token (OpenID Connect Back-Channel
// Logout 1.0 §2.4, §2.6) with panva/jose, an implementation Latchkey did
// not write. Usage: node verify-logout-token.mjs JWKS_URL ISSUER AUDIENCE
// with the token on stdin. Prints {"header": ..., "payload": ...} and
// exits 0 when the token is valid; prints the reason and exits 1 if not.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8').trim();
}

const [jwksURL, issuer, audience] = process.argv.slice(2);
try {
  const token = await readStdin();
  const jwks = createRemoteJWKSet(new URL(jwksURL));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    typ: 'logout+jwt',
    requiredClaims: ['iat', 'exp', 'jti'],
  });
  // §2.6: events must hold the back-channel logout member (a JSON
  // object); a logout token must not hold a nonce; it names sub or sid.
  if (typeof payload.events !== 'object' || payload.events === null ||
      typeof payload.events[EVENT] !== 'object' || payload.events[EVENT] === null ||
      Array.isArray(payload.events[EVENT])) {
    throw new Error('events lacks ' + EVENT);
  }
  if ('nonce' in payload) throw new Error('a logout token must not contain nonce');
  if (typeof payload.sub !== 'string' && typeof payload.sid !== 'string') {
    throw new Error('neither sub nor sid');
  }
  process.stdout.write(JSON.stringify({ header: protectedHeader, payload }) + '\n');
} catch (e) {
  process.stdout.write('invalid logout token: ' + (e && e.code ? e.code + ': ' : '') + (e && e.message) + '\n');
  process.exit(1);
}
