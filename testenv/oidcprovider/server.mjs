// An independent, OpenID-certified provider (panva's oidc-provider) for
// latchkey's interoperability tests (testenv/oidcprovider_test.go). It is a
// test fixture, not a deployment: any login id signs in, with any password.
//
// Environment:
//   PORT                      port on 127.0.0.1 (0 or unset: any free port)
//   CLIENT_ID, CLIENT_SECRET  the one client (client_secret_basic)
//   REDIRECT_URI              its redirect URI
//   POST_LOGOUT_REDIRECT_URI  its post-logout redirect URI (optional)
//   CONFORM_ID_TOKEN_CLAIMS   "false" puts the claims of the scopes profile
//                             and email into the ID token too; the default
//                             (oidc-provider's) returns them only from
//                             userinfo in the code flow (OpenID Connect Core
//                             §5.4), the ID token then carries sub only.
//
// Once it answers it prints one line, "listening on <port>", on stdout. It
// exits when stdin closes or on SIGTERM/SIGINT.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`oidcprovider: environment variable ${name} is required`);
    process.exit(2);
  }
  return v;
}

const client = {
  client_id: required('CLIENT_ID'),
  client_secret: required('CLIENT_SECRET'),
  redirect_uris: [required('REDIRECT_URI')],
  post_logout_redirect_uris: process.env.POST_LOGOUT_REDIRECT_URI ? [process.env.POST_LOGOUT_REDIRECT_URI] : [],
  response_types: ['code'],
  grant_types: ['authorization_code'],
  token_endpoint_auth_method: 'client_secret_basic',
};
const conformIdTokenClaims = process.env.CONFORM_ID_TOKEN_CLAIMS !== 'false';

// A fresh RS256 key for every run; nothing secret is kept on disk.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'interop-rs256', alg: 'RS256', use: 'sig' };

// Every login id is an account: sub is the login id.
async function findAccount(ctx, id) {
  const email = id.includes('@') ? id : `${id}@example.com`;
  return {
    accountId: id,
    async claims() {
      return {
        sub: id, email, email_verified: true, name: `Test ${id}`, roles: ['viewer'],
      };
    },
  };
}

const server = http.createServer();
let handler = (req, res) => {
  res.statusCode = 503;
  res.end('starting\n');
};
server.on('request', (req, res) => handler(req, res));

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [client],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    responseTypes: ['code'],
    scopes: ['openid', 'profile', 'email'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'roles'],
    },
    conformIdTokenClaims,
    pkce: { methods: ['S256'], required: () => true },
    features: {
      devInteractions: { enabled: true }, // a login form, then a consent form
      rpInitiatedLogout: { enabled: true },
    },
    findAccount,
  });
  provider.on('server_error', (ctx, err) => console.error('oidcprovider: server_error', err));
  handler = provider.callback();
  process.stdout.write(`listening on ${port}\n`);
});

server.on('error', (err) => {
  console.error(`oidcprovider: ${err.message}`);
  process.exit(1);
});

function stop() {
  server.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
