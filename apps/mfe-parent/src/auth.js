// Cognito USER_PASSWORD_AUTH sign-in, REFRESH_TOKEN_AUTH renewal, RevokeToken sign-out and
// the token store (sessionStorage, never the URL: one tab's, so no other tab renews or signs
// out the same stored session, and no cross-tab locking is needed).

export const TOKENS_KEY = 'mfe.tokens';

/** Error with a message meant for the user (shown in the login form's alert). */
export class SignInError extends Error {}

/**
 * Cognito will not renew this session: it refused the refresh token (revoked, expired, or
 * its user gone) or answered another client error that asking again cannot fix (its app
 * client deleted: ResourceNotFoundException). The session is over.
 */
export class SessionEndedError extends Error {}

/** The error types of a refused refresh, named as the sign-out's cause without more detail. */
const REFUSED = new Set(['NotAuthorizedException', 'UserNotFoundException']);

/** The 4xx answers that may go away when asked again later: a request timeout, throttling. */
const RETRIED_4XX = new Set([408, 429]);

/**
 * Whether a failed answer may go away when asked again later: anything but a 4xx (a 5xx),
 * and throttling (429, or Cognito's TooManyRequestsException on a 400). Any other 4xx stays
 * the same however often the tab asks, so it ends the session rather than retry for good.
 */
function transient(response, type) {
  const clientError = response.status >= 400 && response.status < 500;
  return !clientError || RETRIED_4XX.has(response.status) || type === 'TooManyRequestsException';
}

/** A Cognito user-pool API call from the page: unsigned, as the browser SDKs make these. */
function callCognito(auth, action, body) {
  return fetch(auth.endpoint, {
    method: 'POST',
    mode: 'cors',
    credentials: 'omit',
    cache: 'no-store',
    headers: {
      'Content-Type': 'application/x-amz-json-1.1',
      'X-Amz-Target': `AWSCognitoIdentityProviderService.${action}`,
    },
    body: JSON.stringify(body),
  });
}

/**
 * Calls Cognito's InitiateAuth. Resolves with the stored tokens
 * {IdToken, AccessToken, RefreshToken, expiry} (expiry: epoch milliseconds)
 * or rejects with a SignInError whose message is meant for the user.
 */
export async function signIn(auth, username, password) {
  let response;
  try {
    response = await callCognito(auth, 'InitiateAuth', {
      AuthFlow: 'USER_PASSWORD_AUTH',
      ClientId: auth.client_id,
      AuthParameters: { USERNAME: username, PASSWORD: password },
    });
  } catch {
    throw new SignInError(`Cannot reach the sign-in service at ${auth.endpoint}`);
  }
  const data = await answerOf(response);
  if (!response.ok) {
    throw new SignInError(errorMessage(data) || `Sign-in failed (HTTP ${response.status}).`);
  }
  const tokens = tokensOf(data, null);
  if (tokens) {
    saveTokens(tokens);
    return tokens;
  }
  if (data && data.ChallengeName) {
    throw new SignInError(
      `This account needs the ${data.ChallengeName} step, which this app does not support. Ask an administrator to set a permanent password.`,
    );
  }
  throw new SignInError('Unexpected answer from the sign-in service.');
}

/**
 * Renews the access and ID tokens with the refresh token (InitiateAuth REFRESH_TOKEN_AUTH,
 * as Amplify does; Cognito answers no new refresh token, so the stored one is kept) and
 * stores them. Resolves with the new tokens, or null when the tab was signed out or signed
 * in anew while the call was under way (nothing is stored then, so a sign-out stays one).
 * Rejects with a SessionEndedError when Cognito refuses the refresh token or answers another
 * lasting 4xx, and with another Error when it could not be asked or failed for a while
 * (offline, 5xx, throttled): the session is kept, ask again later.
 */
export async function refreshTokens(auth, tokens) {
  if (!tokens || typeof tokens.RefreshToken !== 'string') {
    throw new SessionEndedError('this session has no refresh token');
  }
  let response;
  try {
    response = await callCognito(auth, 'InitiateAuth', {
      AuthFlow: 'REFRESH_TOKEN_AUTH',
      ClientId: auth.client_id,
      AuthParameters: { REFRESH_TOKEN: tokens.RefreshToken },
    });
  } catch (err) {
    throw new Error(`cannot reach the sign-in service at ${auth.endpoint} (${err})`);
  }
  const data = await answerOf(response);
  if (!response.ok) {
    const type = errorType(response, data);
    const message = errorMessage(data) || `HTTP ${response.status}`;
    if (REFUSED.has(type)) throw new SessionEndedError(message);
    const answered = `the sign-in service at ${auth.endpoint} answered ${type || response.status}: ${message}`;
    if (!transient(response, type)) throw new SessionEndedError(answered);
    throw new Error(answered);
  }
  const fresh = tokensOf(data, tokens.RefreshToken);
  if (!fresh) throw new Error(`unexpected answer from the sign-in service at ${auth.endpoint}`);
  const current = storedTokens();
  if (!current || current.RefreshToken !== tokens.RefreshToken) return null;
  saveTokens(fresh);
  return fresh;
}

/** The JSON body of a Cognito answer, or null when it has none. */
async function answerOf(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function errorMessage(data) {
  return (data && (data.message || data.Message)) || '';
}

/** "NotAuthorizedException" from an error answer's __type (or header), which may carry a namespace. */
function errorType(response, data) {
  const type = (data && data.__type) || response.headers.get('x-amzn-ErrorType') || '';
  return type.split('#').pop().split(':')[0];
}

/** The stored form of an AuthenticationResult, or null; `refreshToken` when it carries none. */
function tokensOf(data, refreshToken) {
  const result = data && data.AuthenticationResult;
  if (!result || !result.IdToken || !result.AccessToken) return null;
  return {
    IdToken: result.IdToken,
    AccessToken: result.AccessToken,
    RefreshToken: result.RefreshToken || refreshToken,
    expiry: Date.now() + (Number(result.ExpiresIn) || 3600) * 1000,
  };
}

/**
 * Ends the session at Cognito (RevokeToken with the refresh token), as Amplify's signOut
 * does: the refresh token and the access and ID tokens issued from it stop working for
 * whoever holds a copy, also when the access token has expired already (GlobalSignOut
 * needs a valid one); the user's sessions in other browsers stay. Best effort, so it never
 * rejects: the caller has signed the tab out already, and a failure (offline) only leaves
 * the tokens valid until they expire.
 */
export async function signOut(auth, tokens) {
  if (!auth || !tokens || typeof tokens.RefreshToken !== 'string') return;
  let failure;
  try {
    const response = await callCognito(auth, 'RevokeToken', {
      Token: tokens.RefreshToken,
      ClientId: auth.client_id,
    });
    if (response.ok) return;
    failure = `HTTP ${response.status}`;
  } catch (err) {
    failure = String(err);
  }
  console.warn(
    `mfe-parent: the sign-out at ${auth.endpoint} failed (${failure}); this tab is signed out, ` +
      'but its session may stay valid at Cognito until its tokens expire',
  );
}

export function saveTokens(tokens) {
  sessionStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
}

export function clearTokens() {
  try {
    sessionStorage.removeItem(TOKENS_KEY);
  } catch {
    /* storage unavailable: nothing to clear */
  }
}

/** The stored tokens, expired or not (a sign-out revokes them either way), or null when absent or unreadable. */
export function storedTokens() {
  let tokens;
  try {
    tokens = JSON.parse(sessionStorage.getItem(TOKENS_KEY) || 'null');
  } catch {
    return null;
  }
  if (!tokens || typeof tokens.IdToken !== 'string' || typeof tokens.AccessToken !== 'string') return null;
  return tokens;
}

/** When the access token expires, in epoch ms (seconds are tolerated); 0 when unknown. */
export function tokenExpiry(tokens) {
  const expiry = Number(tokens && tokens.expiry);
  if (!Number.isFinite(expiry)) return 0;
  return expiry < 1e12 ? expiry * 1000 : expiry;
}

/** The stored tokens if present and not expired (nor expiring within 5 s), else null. */
export function loadTokens(now = Date.now()) {
  const tokens = storedTokens();
  if (!tokens) return null;
  return tokenExpiry(tokens) > now + 5000 ? tokens : null;
}

/** A JWT's payload claims, or null when unreadable. */
function claimsOf(jwt) {
  try {
    const payload = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = payload + '='.repeat((4 - (payload.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

/**
 * The `iss` of the user pool's tokens: Cognito's regional URL and the pool id, whatever
 * endpoint the page calls (the emulator issues the same); the region is the pool id's prefix.
 */
function issuerOf(auth) {
  const region = auth.user_pool_id.split('_')[0] || auth.region;
  return `https://cognito-idp.${region}.amazonaws.com/${auth.user_pool_id}`;
}

/**
 * Whether `tokens` were issued by the page's user pool to its app client: stored tokens of a
 * pool or client since replaced (the environment destroyed and made again, a new emulator)
 * are no session here, as Amplify, which keys its stored tokens by client id, finds none.
 * The pool is only checked when the page config names it.
 */
export function issuedFor(auth, tokens) {
  const id = claimsOf(tokens.IdToken);
  const access = claimsOf(tokens.AccessToken);
  if (!id || !access || id.aud !== auth.client_id || access.client_id !== auth.client_id) return false;
  if (!auth.user_pool_id) return true;
  const issuer = issuerOf(auth);
  return id.iss === issuer && access.iss === issuer;
}

/** The user name in an IdToken (JWT payload claim `cognito:username`), or '' when unreadable. */
export function usernameFromIdToken(idToken) {
  const claims = claimsOf(idToken);
  return claims ? String(claims['cognito:username'] || claims.username || claims.email || '') : '';
}
