// Cognito USER_PASSWORD_AUTH sign-in, RevokeToken sign-out and the token store
// (sessionStorage, never the URL).

export const TOKENS_KEY = 'mfe.tokens';

/** Error with a message meant for the user (shown in the login form's alert). */
export class SignInError extends Error {}

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
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = data && (data.message || data.Message);
    throw new SignInError(message || `Sign-in failed (HTTP ${response.status}).`);
  }
  const result = data && data.AuthenticationResult;
  if (result && result.IdToken && result.AccessToken) {
    const tokens = {
      IdToken: result.IdToken,
      AccessToken: result.AccessToken,
      RefreshToken: result.RefreshToken || null,
      expiry: Date.now() + (Number(result.ExpiresIn) || 3600) * 1000,
    };
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

/** The stored tokens if present and not expired (expiry in epoch ms; seconds are tolerated), else null. */
export function loadTokens(now = Date.now()) {
  const tokens = storedTokens();
  if (!tokens) return null;
  let expiry = Number(tokens.expiry);
  if (!Number.isFinite(expiry)) return null;
  if (expiry < 1e12) expiry *= 1000;
  return expiry > now + 5000 ? tokens : null;
}

/** The user name in an IdToken (JWT payload claim `cognito:username`), or '' when unreadable. */
export function usernameFromIdToken(idToken) {
  try {
    const payload = idToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = payload + '='.repeat((4 - (payload.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return String(claims['cognito:username'] || claims.username || claims.email || '');
  } catch {
    return '';
  }
}
