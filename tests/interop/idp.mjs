// A real third-party OpenID Provider (npm `oidc-provider`) for the ssoio test suite.
//
// Started by tests/interop/provider.py. Protocol with the parent process:
//   * stdout carries exactly one line, the JSON ready line
//     {"ready": true, "issuer": "http://127.0.0.1:PORT", "port": PORT};
//   * everything else (library notices, request errors, debug lines) goes to stderr;
//   * SIGTERM / SIGINT close the server and exit 0.
//
// Environment:
//   IDP_PORT                       listening port on 127.0.0.1 (default 0 = ephemeral)
//   IDP_AT_TTL                     access token lifetime in seconds (default 300)
//   IDP_REDIRECT_URIS              comma-separated redirect URIs of ssoio-web
//   IDP_POST_LOGOUT_REDIRECT_URIS  comma-separated post-logout redirect URIs of ssoio-web
//   IDP_BACKCHANNEL_LOGOUT_URI     back-channel logout URI of ssoio-web (optional)
//   IDP_AT_SID                     "0": no `sid` in access tokens (as LemonLDAP::NG, Okta and
//                                  Auth0 by default); default "1"
//
// Test-only control routes (never part of a real provider):
//   POST /__test/rotate[?drop_old=1]  new RSA key, signs from now on; answers {"kid", "kids"}
//   GET  /__test/kids                 {"kids": [...]} in signing-preference order
//
// The crowd (test-only accounts for load-shaped tests): `crowd-1` ... `crowd-99999`, tenant
// acme, no roles, scope chat. The client `ssoio-crowd` gets a crowd member's access token in
// one request with the grant CROWD_GRANT (`username` parameter, no password): the same JWT an
// authorization-code login would give, without the five round trips of a login, so a test
// can have hundreds of distinct users in a few seconds.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

// oidc-provider prints its "you SHOULD change this default" notices with console.info, i.e. to
// stdout, which would corrupt the one-line protocol above. Route every console method to stderr
// *before* the library is loaded (hence the dynamic import below: static imports would run first).
for (const method of ['log', 'info', 'debug']) {
  console[method] = (...args) => console.error(...args);
}

const { default: Provider, errors: oidcErrors } = await import('oidc-provider');

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

function intFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function listFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

const PORT = intFromEnv('IDP_PORT', 0);
const AT_TTL = intFromEnv('IDP_AT_TTL', 300) || 300;
const REDIRECT_URIS = listFromEnv('IDP_REDIRECT_URIS', ['http://127.0.0.1:8000/auth/callback']);
const POST_LOGOUT_REDIRECT_URIS = listFromEnv('IDP_POST_LOGOUT_REDIRECT_URIS', ['http://127.0.0.1:8000/']);
const BACKCHANNEL_LOGOUT_URI = process.env.IDP_BACKCHANNEL_LOGOUT_URI || undefined;
const AT_SID = process.env.IDP_AT_SID !== '0';
// Provider shapes other than RFC 9068's, for `ssoio doctor` tests: the access token's JWS
// `typ` (Keycloak, Auth0 and LemonLDAP::NG send "JWT"), and groups released as ONE string
// joined by this separator (LemonLDAP::NG without the array claim type), with every account
// also in "users" as in LemonLDAP::NG's demo directory.
const AT_TYP = process.env.IDP_AT_TYP || undefined;
const GROUPS_JOIN = process.env.IDP_GROUPS_JOIN || undefined;

// The resource indicator must be an absolute URI, but the audience ssoio checks is a plain
// name (as Keycloak's `aud` would be): the two are configured independently.
const RESOURCE = 'urn:ssoio:api';
const AUDIENCE = 'ssoio-api';

// Scopes each client may obtain for RESOURCE. Listing the OIDC scopes here too makes the
// access token's `scope` read "openid profile email chat", as Keycloak's does.
const RESOURCE_SCOPES = {
  'ssoio-web': 'openid profile email chat',
  'ssoio-backend': 'ssoio:emit',
  'ssoio-backend-noscope': '',
  'ssoio-crowd': 'openid profile email chat',
};

// Claims of client-credentials tokens: the backend of tenant acme (ssoio's API disconnects
// reach only connections of the caller's tenant, api.disconnect.same_attributes).
const SERVICE_CLAIMS = {
  'ssoio-backend': { tenant: 'acme' },
};

// ---------------------------------------------------------------------------------------------
// Reference users (the scenario every ssoio test speaks about)
// ---------------------------------------------------------------------------------------------

const USERS = {
  alice: { roles: ['admin', 'staff'], groups: ['/eng'], tenant: 'acme' },
  bob: { roles: ['staff'], groups: ['/sales'], tenant: 'acme' },
  carol: { roles: [], groups: [], tenant: 'globex' },
  dave: { roles: ['staff'], groups: ['/eng'], tenant: 'acme', deniedScopes: ['chat'] },
  erin: { roles: [], groups: ['/sales'], tenant: 'acme' },
};

const CROWD = /^crowd-[1-9][0-9]{0,4}$/;
const CROWD_GRANT = 'urn:ssoio:test:crowd';

function known(username) {
  // Own-property check: "__proto__" or "constructor" must not count as users.
  return Object.hasOwn(USERS, username) || CROWD.test(username);
}

function userOf(username) {
  return Object.hasOwn(USERS, username) ? USERS[username] : { roles: [], groups: [], tenant: 'acme' };
}

function passwordOf(username) {
  return `${username}-pw`;
}

// Keycloak-shaped claims. Used both for the ID token / userinfo (filtered by scope through the
// `claims` configuration) and for the access token (through extraTokenClaims, unfiltered).
function claimsOf(username) {
  const user = userOf(username);
  return {
    sub: username,
    preferred_username: username,
    name: username.charAt(0).toUpperCase() + username.slice(1),
    email: `${username}@${user.tenant}.example`,
    email_verified: true,
    realm_access: { roles: [...user.roles] },
    groups: [...user.groups],
    tenant: user.tenant,
  };
}

function checkPassword(username, password) {
  // The crowd has no password: it signs in through CROWD_GRANT only.
  if (!Object.hasOwn(USERS, username)) return false;
  const expected = Buffer.from(passwordOf(username));
  const given = Buffer.from(String(password ?? ''));
  return expected.length === given.length && crypto.timingSafeEqual(expected, given);
}

// ---------------------------------------------------------------------------------------------
// Process-wide state that must survive a Provider swap (key rotation)
// ---------------------------------------------------------------------------------------------

// A Provider's key set is fixed at construction, so rotation builds a new Provider. Everything
// stateful (sessions, grants, interactions, codes, refresh tokens) therefore lives here, outside
// any Provider instance. A plain Map instead of the library's MemoryAdapter because the latter is
// an LRU capped at 1000 entries, which a long test run could silently evict sessions from.
const store = new Map(); // `${model}:${id}` -> { payload, expiresAt }
const sessionUidIndex = new Map(); // session uid -> session id
const userCodeIndex = new Map(); // device-flow user code -> id (unused here; part of the API)
const grantIndex = new Map(); // grantId -> Set of store keys issued under that grant
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest']);

function liveEntry(key) {
  const entry = store.get(key);
  if (entry === undefined) return undefined;
  if (entry.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry;
}

class StoreAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    store.set(key, { payload: structuredClone(payload), expiresAt });
    if (this.model === 'Session' && payload.uid) sessionUidIndex.set(payload.uid, id);
    if (payload.userCode) userCodeIndex.set(payload.userCode, id);
    if (GRANTABLE.has(this.model) && payload.grantId) {
      if (!grantIndex.has(payload.grantId)) grantIndex.set(payload.grantId, new Set());
      grantIndex.get(payload.grantId).add(key);
    }
  }

  async find(id) {
    if (id === undefined) return undefined;
    const entry = liveEntry(this.key(id));
    // Hand out copies: callers mutate what they get and must only persist through upsert().
    return entry === undefined ? undefined : structuredClone(entry.payload);
  }

  async findByUid(uid) {
    return this.find(sessionUidIndex.get(uid));
  }

  async findByUserCode(userCode) {
    return this.find(userCodeIndex.get(userCode));
  }

  async consume(id) {
    const entry = liveEntry(this.key(id));
    if (entry !== undefined) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    const key = this.key(id);
    const entry = store.get(key);
    store.delete(key);
    if (entry?.payload.uid && sessionUidIndex.get(entry.payload.uid) === id) {
      sessionUidIndex.delete(entry.payload.uid);
    }
  }

  async revokeByGrantId(grantId) {
    for (const key of grantIndex.get(grantId) ?? []) store.delete(key);
    grantIndex.delete(grantId);
  }
}

// Expired entries are dropped lazily on read; this sweep bounds memory for entries never read
// again. unref(): the timer must not keep the process alive on shutdown.
setInterval(() => {
  const now = Date.now();
  for (const [key, entry] of store) {
    if (entry.expiresAt <= now) store.delete(key);
  }
  for (const [uid, id] of sessionUidIndex) {
    if (!store.has(`Session:${id}`)) sessionUidIndex.delete(uid);
  }
  for (const [grantId, keys] of grantIndex) {
    for (const key of keys) if (!store.has(key)) keys.delete(key);
    if (keys.size === 0) grantIndex.delete(grantId);
  }
}, 60_000).unref();

// Cookie signing keys: shared by every Provider generation so cookies set before a rotation
// (session, interaction) are still accepted after it.
const COOKIE_KEYS = [crypto.randomBytes(32).toString('base64url')];

// Signing keys, newest first: oidc-provider signs with the first key that fits the algorithm.
let signingKeys = [];

function newSigningKey() {
  // PEM out of the key generation job, then a key object of our own: exporting the job's own
  // key object as a JWK deadlocks node 20 now and then (seen on this machine, about one start
  // in a hundred under load: a garbage collection during the export runs the finished job's
  // destructor, which waits for the key's lock that the export holds).
  const { privateKey: pem } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return {
    ...crypto.createPrivateKey(pem).export({ format: 'jwk' }),
    kid: crypto.randomBytes(12).toString('base64url'),
    use: 'sig',
    alg: 'RS256',
  };
}

// ---------------------------------------------------------------------------------------------
// Provider configuration
// ---------------------------------------------------------------------------------------------

function webClient() {
  const client = {
    client_id: 'ssoio-web',
    client_secret: 'ssoio-web-secret',
    client_name: 'ssoio web',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: REDIRECT_URIS,
    post_logout_redirect_uris: POST_LOGOUT_REDIRECT_URIS,
    id_token_signed_response_alg: 'RS256',
    token_endpoint_auth_method: 'client_secret_basic',
  };
  if (BACKCHANNEL_LOGOUT_URI) {
    client.backchannel_logout_uri = BACKCHANNEL_LOGOUT_URI;
    client.backchannel_logout_session_required = true;
  }
  return client;
}

function machineClient(clientId) {
  return {
    client_id: clientId,
    client_secret: `${clientId}-secret`,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  };
}

function crowdClient() {
  return { ...machineClient('ssoio-crowd'), grant_types: [CROWD_GRANT] };
}

function resourceServerInfo(clientId) {
  return {
    scope: RESOURCE_SCOPES[clientId] ?? '',
    audience: AUDIENCE,
    accessTokenFormat: 'jwt',
    accessTokenTTL: AT_TTL,
    jwt: { sign: { alg: 'RS256' } },
  };
}

// CROWD_GRANT: a crowd member's access token for ssoio's API, issued as the
// authorization-code grant would issue it (a grant, the resource server's JWT format).
async function crowdGrant(ctx) {
  const { provider, client, params } = ctx.oidc;
  const username = String(params.username ?? '');
  if (!CROWD.test(username)) throw new oidcErrors.InvalidGrant('not a crowd member');
  const scope = RESOURCE_SCOPES[client.clientId];
  const grant = new provider.Grant({ accountId: username, clientId: client.clientId });
  grant.addOIDCScope('openid profile email');
  grant.addResourceScope(RESOURCE, scope);
  const token = new provider.AccessToken({
    accountId: username, client, grantId: await grant.save(), gty: CROWD_GRANT, scope,
  });
  token.resourceServer = new provider.ResourceServer(RESOURCE, resourceServerInfo(client.clientId));
  ctx.oidc.entity('AccessToken', token);
  const value = await token.save();
  ctx.body = { access_token: value, token_type: 'Bearer', expires_in: token.expiration, scope };
}

// The OP session id ("sid") the back-channel logout token will carry for this client. The access
// token's own `sid` is only set by the library when the client registered a back-channel logout
// URI with session_required, so fall back to the session record (always there for a login).
async function sidFor(ctx, token) {
  if (token.sid) return token.sid;
  const provider = ctx?.oidc?.provider ?? currentProvider;
  if (!token.sessionUid || !provider) return undefined;
  const session = await provider.Session.findByUid(token.sessionUid);
  return session?.sidFor(token.clientId) || undefined;
}

function page(title, body) {
  // No external resources (fonts, scripts): browser tests run offline.
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
${body}
</body></html>`;
}

function escapeHtml(value) {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function buildProvider(issuer) {
  const jwks = { keys: signingKeys.map((k) => ({ ...k })) };
  const provider = new Provider(issuer, {
    adapter: StoreAdapter,
    jwks,
    clients: [webClient(), machineClient('ssoio-backend'), machineClient('ssoio-backend-noscope'),
      crowdClient()],
    cookies: { keys: COOKIE_KEYS },
    // `profile` and `email` become scopes through this map; the custom claims stay out of the
    // ID token on purpose (ssoio authorises from access tokens).
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    // Authorization-code flow only (no implicit / hybrid), like ssoio's realm.
    responseTypes: ['code'],
    async findAccount(_ctx, sub) {
      if (!known(sub)) return undefined;
      return {
        accountId: sub,
        async claims() {
          return claimsOf(sub);
        },
      };
    },
    // Only a handful of routes are ours; the rest of the interaction policy is the library's.
    interactions: {
      url: async (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    formats: {
      customizers: {
        async jwt(_ctx, _token, jwt) {
          if (AT_TYP) jwt.header = { ...(jwt.header || {}), typ: AT_TYP };
        },
      },
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // The default page loads web fonts and puts the "yes" button outside the form. This one
        // is a single self-contained form: a test posts `xsrf` + `logout=yes` to sign out.
        async logoutSource(ctx, form) {
          const action = ctx.oidc.urlFor('end_session_confirm');
          const xsrf = /name="xsrf" value="([^"]*)"/.exec(form)?.[1] ?? '';
          ctx.type = 'html';
          ctx.body = page('Sign out', `<h1>Sign out of ${escapeHtml(ctx.host)}?</h1>
<form id="op.logoutForm" method="post" action="${escapeHtml(action)}">
  <input type="hidden" name="xsrf" value="${escapeHtml(xsrf)}">
  <button type="submit" name="logout" value="yes" autofocus>Yes, sign me out</button>
  <button type="submit">No, stay signed in</button>
</form>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = page('Signed out', '<h1>Signed out</h1>');
        },
      },
      resourceIndicators: {
        enabled: true,
        // Ordinary OIDC clients (authlib) send no `resource`: give them ssoio's API anyway.
        defaultResource: async () => RESOURCE,
        // Without this the token endpoint, seeing `openid` and userinfo enabled, would issue an
        // opaque userinfo-only token instead of the resource's JWT.
        useGrantedResource: async () => true,
        async getResourceServerInfo(_ctx, resourceIndicator, client) {
          if (resourceIndicator !== RESOURCE) throw new oidcErrors.InvalidTarget();
          return resourceServerInfo(client.clientId);
        },
      },
    },
    // Keycloak-style claims inside the access token (a client-credentials token has no
    // account: it gets its client's SERVICE_CLAIMS). Standard claims set by the library win
    // over these on collision.
    async extraTokenClaims(ctx, token) {
      if (token.kind === 'ClientCredentials') return SERVICE_CLAIMS[token.clientId];
      if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
      if (!known(token.accountId)) return undefined;
      const { sub: _sub, email_verified: _ev, ...claims } = claimsOf(token.accountId);
      if (GROUPS_JOIN) claims.groups = [...claims.groups, 'users'].join(GROUPS_JOIN);
      const sid = AT_SID ? await sidFor(ctx, token) : undefined;
      return sid ? { ...claims, sid } : claims;
    },
    // Keycloak issues refresh tokens to its web clients without `offline_access`; so do we.
    async issueRefreshToken(_ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    // PKCE S256 is accepted from every client and required from public ones (library default
    // for confidential clients: optional). `plain` is never offered.
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: AT_TTL,
      ClientCredentials: AT_TTL,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      RefreshToken: 14 * 24 * 3600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
    },
    // oidc-provider refuses outgoing requests to special-use addresses (loopback included) by
    // passing a guarding undici dispatcher in `options`. The test RP listens on 127.0.0.1, so
    // the back-channel logout POST must go through a plain fetch. Timeout (2.5 s) is kept.
    fetch: (url, options) => {
      const { dispatcher: _guard, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      const rows = Object.entries(out)
        .map(([k, v]) => `<p><strong>${escapeHtml(k)}</strong>: <span class="${escapeHtml(k)}">${escapeHtml(v)}</span></p>`)
        .join('\n');
      ctx.body = page('Error', `<h1>Error</h1>\n${rows}`);
    },
  });

  provider.registerGrantType(CROWD_GRANT, crowdGrant, ['username']);
  provider.on('server_error', (_ctx, err) => console.error('idp server_error:', err));
  provider.on('backchannel.error', (_ctx, err, client, accountId, sid) => {
    console.error(`idp backchannel.error client=${client.clientId} sub=${accountId} sid=${sid}:`, err);
  });
  provider.on('backchannel.success', (_ctx, client, accountId, sid) => {
    console.error(`idp backchannel.success client=${client.clientId} sub=${accountId} sid=${sid}`);
  });
  return provider;
}

// ---------------------------------------------------------------------------------------------
// Interactions (login form + automatic consent), written against plain node:http
// ---------------------------------------------------------------------------------------------

function loginPage(uid, { username = '', error } = {}) {
  const errorHtml = error ? `<p class="error" role="alert">${escapeHtml(error)}</p>\n` : '';
  return page('Sign in', `<h1>Sign in</h1>
${errorHtml}<form method="post" action="/interaction/${encodeURIComponent(uid)}/login">
  <label>Username <input type="text" name="username" value="${escapeHtml(username)}" autocomplete="username" autofocus></label>
  <label>Password <input type="password" name="password" autocomplete="current-password"></label>
  <button type="submit">Sign in</button>
</form>`);
}

function send(res, status, contentType, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

function sendJson(res, status, value) {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

async function readForm(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw Object.assign(new Error('request body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// Grants everything the library says is missing (OIDC scopes, claims, resource scopes) except
// what the user is not entitled to, which is rejected so the prompt does not come back.
async function autoConsent(provider, interaction) {
  const { prompt: { details }, params, session } = interaction;
  const grant = interaction.grantId
    ? await provider.Grant.find(interaction.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const denied = new Set(USERS[session.accountId]?.deniedScopes ?? []);

  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    const allowed = scopes.filter((s) => !denied.has(s));
    const rejected = scopes.filter((s) => denied.has(s));
    if (allowed.length) grant.addResourceScope(indicator, allowed.join(' '));
    if (rejected.length) grant.rejectResourceScope(indicator, rejected.join(' '));
  }
  return grant.save();
}

async function handleInteraction(req, res, url) {
  const provider = currentProvider;
  const match = /^\/interaction\/([^/]+)(\/login)?$/.exec(url.pathname);
  if (!match) return send(res, 404, 'text/plain', 'not found\n');
  const uid = decodeURIComponent(match[1]);
  const isLogin = Boolean(match[2]);

  let interaction;
  try {
    interaction = await provider.interactionDetails(req, res);
  } catch (err) {
    // Expired or foreign interaction cookie: a readable 400, not a crash.
    return send(res, 400, 'text/html; charset=utf-8', page('Error', `<h1>Error</h1><p class="error">${escapeHtml(err.message)}</p>`));
  }
  if (interaction.uid !== uid) {
    return send(res, 400, 'text/html; charset=utf-8', page('Error', '<h1>Error</h1><p class="error">interaction mismatch</p>'));
  }

  if (!isLogin && req.method === 'GET') {
    if (interaction.prompt.name === 'login') {
      return send(res, 200, 'text/html; charset=utf-8', loginPage(uid));
    }
    if (interaction.prompt.name === 'consent') {
      const grantId = await autoConsent(provider, interaction);
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    return send(res, 400, 'text/plain', `unsupported prompt ${interaction.prompt.name}\n`);
  }

  if (isLogin && req.method === 'POST') {
    if (interaction.prompt.name !== 'login') {
      return send(res, 400, 'text/plain', 'this interaction does not ask for a login\n');
    }
    const form = await readForm(req);
    const username = form.get('username') ?? '';
    if (!checkPassword(username, form.get('password'))) {
      // 200 like Keycloak's login page: a browser or a test sees the form again with an error.
      return send(res, 200, 'text/html; charset=utf-8', loginPage(uid, { username, error: 'Invalid username or password.' }));
    }
    return provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
  }

  res.setHeader('Allow', isLogin ? 'POST' : 'GET');
  return send(res, 405, 'text/plain', 'method not allowed\n');
}

// ---------------------------------------------------------------------------------------------
// Test control routes
// ---------------------------------------------------------------------------------------------

let currentProvider;
let currentCallback;
let issuer;

function installProvider() {
  currentProvider = buildProvider(issuer);
  currentCallback = currentProvider.callback();
}

async function handleTestRoute(req, res, url) {
  if (url.pathname === '/__test/kids' && req.method === 'GET') {
    return sendJson(res, 200, { kids: signingKeys.map((k) => k.kid) });
  }
  if (url.pathname === '/__test/rotate' && req.method === 'POST') {
    const key = newSigningKey();
    const dropOld = ['1', 'true', 'yes'].includes(url.searchParams.get('drop_old') ?? '');
    signingKeys = dropOld ? [key] : [key, ...signingKeys];
    // In-flight requests finish on the old Provider; new ones see the new key set.
    installProvider();
    console.error(`idp rotated keys: ${signingKeys.map((k) => k.kid).join(', ')}`);
    return sendJson(res, 200, { kid: key.kid, kids: signingKeys.map((k) => k.kid) });
  }
  return sendJson(res, 404, { error: 'not found' });
}

// ---------------------------------------------------------------------------------------------
// HTTP server
// ---------------------------------------------------------------------------------------------

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  let handler;
  if (!currentCallback) {
    handler = async () => send(res, 503, 'text/plain', 'starting\n');
  } else if (url.pathname.startsWith('/interaction/')) {
    handler = () => handleInteraction(req, res, url);
  } else if (url.pathname.startsWith('/__test/')) {
    handler = () => handleTestRoute(req, res, url);
  } else {
    // Read the callback at request time: a rotation swaps it for the next request.
    return currentCallback(req, res);
  }
  handler().catch((err) => {
    console.error('idp handler error:', err);
    if (!res.headersSent) send(res, err.status ?? 500, 'text/plain', 'internal error\n');
    else res.destroy();
  });
  return undefined;
});

signingKeys = [newSigningKey()];

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, '127.0.0.1', resolve);
});
const { port } = server.address();
issuer = `http://127.0.0.1:${port}`;
installProvider();

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`idp: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  // Bounded: exit even if some socket refuses to close.
  setTimeout(() => process.exit(0), 2_000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

process.stdout.write(`${JSON.stringify({ ready: true, issuer, port })}\n`);
