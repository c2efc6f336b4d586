/**
 * The package's public API is deliberate (issue 8, SPEC §11): each entry point exports an
 * explicit list — what a plugin user, a store implementer and a CLI user need — and nothing
 * internal; every export carries TSDoc with a one-line summary and an `@example` on its
 * declaration, which is what an IDE shows on hover (STYLE §11). Read with the TypeScript
 * compiler from the sources that `npm run build` compiles.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('..', import.meta.url));
const ENTRIES = {
  'portcullis/core': 'src/core/index.ts',
  'portcullis/fastify': 'src/fastify/index.ts',
  'portcullis/store': 'src/store/index.ts',
  'portcullis/store/redis': 'src/store/redis-login-limiter.ts',
  'portcullis/resource-server': 'src/resource-server/index.ts',
  portcullis: 'src/index.ts',
} as const;
type Entry = keyof typeof ENTRIES;

const EXPECTED: Record<Exclude<Entry, 'portcullis'>, string[]> = {
  'portcullis/core': [
    // the service and the caller it authenticates
    'createAuthService', 'DEFAULT_ARGON2', 'AuthService', 'AuthServiceOptions', 'HashingStats', 'Principal',
    'ClientContext', 'TokenResponse', 'TokenClient', 'PasswordChange', 'SessionView', 'toPublicUser', 'PublicUser', 'NewAccount', 'AccountChanges',
    // accounts people manage themselves (SPEC §10)
    'Accounts', 'AccountOptions', 'NewRegistration', 'PasswordResetRequest', 'PasswordReset',
    // time and hashing cost
    'Clock', 'systemClock', 'createManualClock', 'ManualClock', 'Argon2Params',
    // errors (docs/errors.md)
    'PortcullisError', 'InvalidRequestError', 'InvalidGrantError', 'InactiveUserError', 'UnsupportedGrantTypeError',
    'InvalidScopeError', 'InvalidTargetError', 'TooManyAttemptsError', 'LoginOverloadedError', 'NotAuthenticatedError', 'InvalidTokenError',
    'InsufficientScopeError', 'IncorrectPasswordError', 'NotFoundError', 'ConflictError', 'SelfLockoutError',
    'ValidationError', 'ValidationIssue', 'StoreUnavailableError', 'ConfigError', 'ErrorCode',
    'EmailNotVerifiedError', 'InvalidOneTimeTokenError', 'RateLimitedError',
    // scopes
    'ScopeCatalog', 'DEFAULT_SCOPES', 'DEFAULT_USER_SCOPES',
    // protocols a store or limiter implements
    'Store', 'UserStore', 'SessionStore', 'UserRecord', 'NewUser', 'UserPatch', 'SessionRecord', 'NewSession', 'AuthState',
    'RefreshTokenRecord', 'RefreshTokenState', 'NewRefreshToken', 'StoreChange', 'LoginLimiter', 'unlimitedLoginLimiter',
    'LoginCounter', 'LoginLimits', 'createLoginLimiter', 'createMemoryLoginCounter',
    'MailOutboxStore', 'NewMail', 'OutboxMail', 'OneTimeTokenStore', 'OneTimeTokenPurpose', 'NewOneTimeToken', 'OneTimeTokenRecord', 'LinkedMail',
    // signing keys
    'openKeyRing', 'KeyRing', 'KeyRingOptions', 'SigningKeyStore', 'SigningKeyRecord',
    // audit events (SPEC §9.2)
    'EventStore', 'EVENT_TYPES', 'EventContext', 'EventPage', 'EventPageRequest', 'EventPosition', 'EventQuery', 'EventType', 'NewAuditEvent', 'PublicEvent', 'StoredEvent',
    // the TOTP second factor (SPEC §10)
    'PasswordGrantInput', 'MFA_OTP_GRANT_TYPE', 'MfaGrantInput', 'MfaRequiredError', 'IncorrectCodeError', 'MfaStore', 'MfaTokenRecord', 'TotpRecord', 'TotpEnrollment', 'TotpStatus',
    // the client registry, client authentication, service tokens and introspection (SPEC §7)
    'Caller', 'CallerKind', 'ServicePrincipal', 'ClientAuthRequest', 'ClientCredentials', 'ClientsMode', 'ClientOperations', 'ServiceTokenResponse',
    'CLIENT_GRANTS', 'toPublicClient', 'ClientChanges', 'ClientGrant', 'ClientType', 'ClientWithSecret', 'NewClientInput', 'PublicClient', 'RegisteredClient',
    'IntrospectionResponse', 'ClientPatch', 'ClientRecord', 'ClientStore', 'NewClient', 'InvalidClientError', 'UnauthorizedClientError', 'TooManyRequestsError',
    // the security event feed (SPEC §8)
    'AccessDeniedError',
  ],
  'portcullis/fastify': ['portcullis', 'PortcullisPluginOptions', 'AuthRequirement', 'DEFAULT_SECURITY_SCHEME', 'oauth2SecurityScheme', 'renderError'],
  'portcullis/store': ['openStore', 'openDatabase', 'Database', 'createKyselyStore', 'KyselyStore', 'KyselyStoreOptions', 'Schema', 'createDatabaseLoginLimiter', 'createSigningKeyStore'],
  'portcullis/store/redis': ['createRedisClient', 'RedisClientOptions', 'createRedisLoginLimiter', 'RedisLoginLimiterOptions'],
  'portcullis/resource-server': [
    // the verifier and what it answers
    'createRemoteVerifier', 'RemoteVerifier', 'RemoteVerifierOptions', 'RemoteVerifierStatus', 'TokenClaims', 'bearerToken',
    // its refusals (SPEC §2.2 statuses)
    'ResourceServerError', 'NotAuthenticatedError', 'InvalidTokenError', 'InsufficientScopeError', 'InactiveUserError', 'VerifierUnavailableError',
    'InvalidTokenReason', 'ResourceServerErrorCode',
    // the security events of the feed (SPEC §8)
    'SESSION_REVOKED', 'CREDENTIAL_CHANGE', 'ACCOUNT_DISABLED', 'ACCOUNT_PURGED', 'KEY_REVOKED', 'SECURITY_EVENT_TYPES', 'SET_TYPE', 'POLL_DELIVERY_METHOD',
    'SSF_CONFIGURATION_PATH', 'EventPayload', 'OpaqueSubject', 'SecurityEventClaims', 'SecurityEventPayloads', 'SecurityEventType', 'SsfConfiguration',
    // the adapters
    'remoteAuth', 'RemoteAuthOptions', 'fastifyRequireToken', 'expressRequireToken', 'ExpressLikeRequest', 'ExpressLikeResponse',
  ],
};
/** What only the package root adds: the server's configuration, and running the whole server or the CLI in your own process. */
const ROOT_ONLY = ['loadConfig', 'Config', 'ConfigFlags', 'buildApp', 'BuildAppOptions', 'startServer', 'StartServerOptions', 'RunningServer', 'openRuntime', 'Runtime', 'runCli', 'processIo', 'CliIo'];

/** Internal helpers that must not be reachable from any entry point (tests import them from their files). */
const INTERNAL = [
  'toUser', 'toSession', 'sqlitePath', 'pairFailureKey', 'addressFailureKey', 'addressLoginKey', 'createDatabaseLoginCounter', 'DEFAULTS', 'wholeNumber', 'limiterAddress', 'PG_TIMEOUTS', 'PG_POOL_SIZE',
  'SHUTDOWN_GRACE_MS', 'KEY_RELOAD_INTERVAL_MS', 'LEEWAY_SECONDS', 'errorClasses', 'tokenRoutes', 'adminUsersRoutes', 'sessionRoutes',
  'passwordRoutes', 'logoutRoutes', 'accountRoutes', 'accountPageRoutes', 'registerSchema', 'resetRequestSchema', 'startMailSender',
  'ACCOUNT_LIMITS', 'createAccounts', 'verificationFor', 'sealMail', 'openMail', 'mailSealKey', 'hashOneTimeToken', 'generateOneTimeToken',
  'usersMeRoutes', 'wellKnownRoutes', 'docsRoutes', 'healthRoutes', 'revokeRoutes', 'createUserSchema', 'publicUserSchema',
  'parseForm', 'parseAuthorization', 'requireAuth', 'passwordGrant', 'refreshGrant', 'createPasswordHasher', 'createAccessTokens',
  'hashRefreshToken', 'createAuthenticator', 'sealPrivateKey', 'migrationProvider', 'REDACT_PATHS', 'loggerOptions', 'createWorkLimiter',
  'mfaRoutes', 'createMfaStore', 'sealTotpSecret', 'openTotpSecret', 'requireSecondFactor', 'mfaOtpGrant', 'acceptSecondFactor', 'hashMfaToken', 'hashRecoveryCode',
  // the resource-server library's parts
  'createEndedState', 'startFeed', 'receiveSet', 'openKeySet', 'createIntrospection', 'discoverTransmitter', 'discoverAuthorizationServer', 'fetchJson', 'basicAuthorization',
];

const program = ts.createProgram(
  Object.values(ENTRIES).map((file) => `${root}${file}`),
  { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, allowImportingTsExtensions: true, noEmit: true, strict: true, skipLibCheck: true, types: ['node'] },
);
const checker = program.getTypeChecker();

/** The exports of one entry point, by name, each resolved to its declaration's symbol. */
function exportsOf(entry: Entry): Map<string, ts.Symbol> {
  const file = program.getSourceFile(`${root}${ENTRIES[entry]}`);
  assert.ok(file, ENTRIES[entry]);
  const moduleSymbol = checker.getSymbolAtLocation(file);
  assert.ok(moduleSymbol, `${ENTRIES[entry]} is a module`);
  const result = new Map<string, ts.Symbol>();
  for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
    result.set(symbol.name, symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol);
  }
  return result;
}

test('each subpath export lists exactly what a plugin user, a store implementer or a CLI user needs', () => {
  for (const [entry, expected] of Object.entries(EXPECTED) as [Exclude<Entry, 'portcullis'>, string[]][]) {
    assert.deepEqual([...exportsOf(entry).keys()].sort(), [...expected].sort(), entry);
  }
});

test('the package root is the union of the subpaths (except the Redis limiter and the resource-server library) plus the server and CLI entry points', () => {
  const expected = new Set([...EXPECTED['portcullis/core'], ...EXPECTED['portcullis/fastify'], ...EXPECTED['portcullis/store'], ...ROOT_ONLY]);
  assert.deepEqual([...exportsOf('portcullis').keys()].sort(), [...expected].sort());
});

test('internal helpers are exported by no entry point', () => {
  for (const entry of Object.keys(ENTRIES) as Entry[]) {
    const names = exportsOf(entry);
    for (const name of INTERNAL) assert.equal(names.has(name), false, `${entry} exports the internal ${name}`);
  }
});

test('every export has TSDoc on its declaration: a one-line summary and an @example', () => {
  const missing: string[] = [];
  const seen = new Set<ts.Symbol>();
  for (const entry of Object.keys(ENTRIES) as Entry[]) {
    for (const [name, symbol] of exportsOf(entry)) {
      if (seen.has(symbol)) continue;
      seen.add(symbol);
      const summary = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
      const example = symbol.getJsDocTags(checker).some((tag) => tag.name === 'example');
      if (!summary || !example) missing.push(`${name} (${entry}):${summary ? '' : ' no summary'}${example ? '' : ' no @example'}`);
    }
  }
  assert.deepEqual(missing, []);
});

test("the service's face is its operations, never its parts (issue 9): no store, hasher, token verifier, limiter or keys", () => {
  const service = exportsOf('portcullis/core').get('AuthService');
  assert.ok(service);
  const members = checker.getDeclaredTypeOfSymbol(service).getProperties().map((p) => p.name).sort();
  assert.deepEqual(members, [
    'accessTokenTtl', 'accounts', 'authenticate', 'changePassword', 'clock', 'createUser', 'deleteUser', 'endSession', 'getUser', 'hashPassword',
    'hashingStats', 'isUnavailable', 'issuer', 'issuerFor', 'jwks', 'listSessions', 'listUsers', 'listEvents', 'logout', 'maxSessions', 'observer', 'passwordGrant',
    'ping', 'refreshGrant', 'refreshHashClasses', 'refreshReuseGrace', 'refreshTokenTtl', 'revokeToken', 'scopes', 'updateUser', 'warm',
    // the TOTP second factor (SPEC §10)
    'mfaGrant', 'enrollTotp', 'confirmTotp', 'disableTotp', 'totpStatus', 'resetTotp',
    // the client operations (SPEC §7)
    'clientsMode', 'authenticateClient', 'clientCredentialsGrant', 'introspect', 'createClient', 'listClients', 'getClient', 'updateClient',
    'rotateClientSecret', 'removeClient',
  ].sort());
});
