// The OpenID provider the web BFF's token-handler tests run against:
// oidc-provider (a certified implementation) on loopback, configured from
// the environment by the test that starts it. Its development login and
// consent pages accept any user id (any password); the test drives them
// over HTTP, or Chromium does. Prints one line, `listening <issuer>`, once
// it accepts connections.
//
//   PORT                 port on 127.0.0.1 (required)
//   CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, POST_LOGOUT_REDIRECT_URI
//   ACCESS_TOKEN_TTL     seconds an access token lives (default 3600)
//
// Its ID tokens are signed with an RSA key made at start, so a restarted
// provider has rotated its keys.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
};

const port = Number(env('PORT'));
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  clients: [
    {
      client_id: env('CLIENT_ID'),
      client_secret: env('CLIENT_SECRET'),
      redirect_uris: [env('REDIRECT_URI')],
      post_logout_redirect_uris: [env('POST_LOGOUT_REDIRECT_URI')],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  // Every client must send a PKCE challenge (S256 is the only method).
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  // Any user id is a user; its name says who it is.
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: `Test user ${id}` };
      },
    };
  },
  claims: { openid: ['sub'], profile: ['name'] },
  // The BFF's own scope besides OpenID's: what its routes check.
  scopes: ['openid', 'offline_access', 'profile', 'orders:write'],
  // A refresh token for every code grant of a client allowed to refresh
  // (the default also wants a consent prompt for offline_access).
  async issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: Number(env('ACCESS_TOKEN_TTL', '3600')),
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 600,
    Grant: 86400,
    RefreshToken: 86400,
    Session: 86400,
  },
  cookies: { keys: ['token-handler-tests-only'] },
});
provider.on('server_error', (_ctx, error) => console.error('server_error', error));

provider.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
