// Upstream OpenID provider for the oidc connector's real-peer test:
// panva's oidc-provider (version pinned in package-lock.json) on
// 127.0.0.1 with an ephemeral port, a freshly generated RS256 key, one
// confidential client and the development login/consent forms.
//
// Input: the OP_CONFIG environment variable, JSON
//   {"clientID", "clientSecret", "redirectURI", "accounts": {sub: claims}}.
// Output: one JSON line {"issuer": "http://127.0.0.1:PORT"} on stdout once
// it listens.
// Admin hook: POST /__admin/remove?sub=SUB makes findAccount refuse SUB
// (the account was "removed" upstream), so its refresh tokens get
// invalid_grant.
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const cfg = JSON.parse(process.env.OP_CONFIG);
const removed = new Set();

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'op-key-1', use: 'sig', alg: 'RS256' };

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: cfg.clientID,
      client_secret: cfg.clientSecret,
      redirect_uris: [cfg.redirectURI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: ['latchkey-real-peer-test-cookie-key'] },
    pkce: { methods: ['S256'], required: () => true },
    rotateRefreshToken: true,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    features: { devInteractions: { enabled: true } },
    async findAccount(ctx, sub) {
      if (removed.has(sub) || !(sub in cfg.accounts)) {
        return undefined;
      }
      return {
        accountId: sub,
        async claims() {
          return { sub, ...cfg.accounts[sub] };
        },
      };
    },
  });
  const handle = provider.callback();
  server.on('request', (req, res) => {
    const url = new URL(req.url, issuer);
    if (req.method === 'POST' && url.pathname === '/__admin/remove') {
      removed.add(url.searchParams.get('sub'));
      res.writeHead(204);
      res.end();
      return;
    }
    handle(req, res);
  });
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
