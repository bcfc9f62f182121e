// The tab's signed-in session, apart from what the page shows of it: renewal before the
// access token expires, retry while Cognito cannot be reached, catching up after a hidden
// tab's throttled timers, one renewal shared by all who ask, and what the page's apps get
// (`window.mfeAuth`, the `mfe:session` event). <mfe-parent> shows each change through the
// `ui` handlers it passes in.
import {
  SessionEndedError,
  clearTokens,
  issuedFor,
  signIn as cognitoSignIn,
  signOut as cognitoSignOut,
  loadTokens,
  refreshTokens,
  storedTokens,
  tokenExpiry,
} from './auth.js';

const RENEW_BEFORE_MS = 60_000; // renew the tokens a minute before the access token expires
const RETRY_MS = 15_000; // how often a renewal that could not reach Cognito is tried again
const MIN_DELAY_MS = 1_000; // never retry faster than this
const SESSION_EVENT = 'mfe:session'; // on window: the session started, was renewed or ended

/** What the page's apps get of a session (never the refresh token): see the README. */
function sessionOf(tokens) {
  return { accessToken: tokens.AccessToken, idToken: tokens.IdToken, expiresAt: tokenExpiry(tokens) };
}

/**
 * How long to wait before renewing tokens whose access token expires at `expiry`: until a
 * minute before, or half the time left when that is under two minutes (short validities).
 */
function renewalDelay(expiry, now = Date.now()) {
  const left = expiry - now;
  return Math.max(0, left > 2 * RENEW_BEFORE_MS ? left - RENEW_BEFORE_MS : left / 2);
}

export class Session {
  /**
   * `auth`: the environment's Cognito settings, or undefined for a page without sign-in.
   * `ui`: what the page shows of the session, its handlers called on each change:
   * - signedIn(tokens, username): the session started or was renewed (`username`: the one
   *   typed at sign-in, for an ID token that names none)
   * - renewing(): a load found the tokens expired and renews them
   * - signedOut(): a load found no session
   * - ended(message): the session is over (signed out, or Cognito will not renew it)
   * - unrenewed(message): the access token has expired and could not be renewed yet
   */
  constructor(auth, ui) {
    this.auth = auth;
    this.ui = ui;
    this._renewal = undefined; // the renewal timer
    this._dueAt = Infinity; // when that timer is due: a hidden tab's timers fire late, if at all
    this._renewing = null; // the renewal under way, shared by whoever asks meanwhile
    this._epoch = 0; // bumped by a sign-out or disconnect: a renewal under way then is dropped
    this._retrying = false; // a renewal failed for want of Cognito: try again once online
    this._onOnline = () => this._retrying && this._renew();
    // Chrome throttles a background tab's timers (up to a minute): catch up when it is back.
    this._onWake = () => document.visibilityState === 'visible' && Date.now() >= this._dueAt && this._renew();
    this.api = { session: () => this._current() }; // window.mfeAuth
  }

  /**
   * Gives the apps `window.mfeAuth` and, on a page with sign-in, resumes the tab's session:
   * expired tokens are renewed first (signed out only when Cognito refuses the refresh token);
   * tokens of another pool or client are dropped.
   */
  connect() {
    window.mfeAuth = this.api;
    if (!this.auth) return;
    window.addEventListener('online', this._onOnline);
    window.addEventListener('focus', this._onWake);
    document.addEventListener('visibilitychange', this._onWake);
    this._dropForeign();
    const tokens = loadTokens();
    if (tokens) {
      this._signedIn(tokens);
    } else if (storedTokens()) {
      this.ui.renewing();
      this._renew();
    } else {
      this.ui.signedOut();
    }
  }

  /**
   * Drops stored tokens of another user pool or app client than the page's (the environment
   * made again, its client replaced): no session, and not revoked, as the page's pool would
   * not know them; the login form shows.
   */
  _dropForeign() {
    const tokens = storedTokens();
    if (tokens && !issuedFor(this.auth, tokens)) clearTokens();
  }

  disconnect() {
    window.removeEventListener('online', this._onOnline);
    window.removeEventListener('focus', this._onWake);
    document.removeEventListener('visibilitychange', this._onWake);
    if (window.mfeAuth === this.api) delete window.mfeAuth;
    this._stopRenewal();
  }

  /**
   * Signs in at Cognito; rejects with auth.js's SignInError. A session kept for its renewal
   * (offline at load) is revoked, and its pending renewal dropped.
   */
  async signIn(username, password) {
    const previous = storedTokens(); // a session kept for its renewal (offline at load)
    const tokens = await cognitoSignIn(this.auth, username, password);
    this._stopRenewal(); // a renewal still pending for the previous session must not run
    if (previous && previous.RefreshToken !== tokens.RefreshToken) cognitoSignOut(this.auth, previous);
    this._signedIn(tokens, username);
  }

  /** Signs the tab out at once, then ends the session at Cognito (best effort, never awaited). */
  signOut() {
    const tokens = storedTokens();
    this._end('');
    cognitoSignOut(this.auth, tokens);
  }

  /**
   * `window.mfeAuth.session()`, the apps' way to a token that is valid now (Amplify's
   * fetchAuthSession): the tokens, renewed first when they expire within a minute.
   * Rejects when the tab is signed out, or when expired tokens could not be renewed.
   */
  async _current() {
    if (!this.auth) throw new Error('mfe-parent: this page has no sign-in (its environment configures no auth)');
    let failure;
    const due = storedTokens();
    if (due && tokenExpiry(due) - Date.now() < RENEW_BEFORE_MS) failure = await this._renew();
    const tokens = storedTokens();
    const why = failure ? ` (${failure.message})` : '';
    if (!tokens) throw new Error(`mfe-parent: signed out${why}`);
    if (tokenExpiry(tokens) <= Date.now()) {
      throw new Error(`mfe-parent: the session has expired and could not be renewed${why}; try again later`);
    }
    return sessionOf(tokens);
  }

  /** Tells the page's apps that the session started, was renewed or ended (detail null). */
  _announce(tokens) {
    window.dispatchEvent(new CustomEvent(SESSION_EVENT, { detail: tokens ? sessionOf(tokens) : null }));
  }

  /** Shows the apps for `tokens` and schedules their renewal. */
  _signedIn(tokens, username = '') {
    this._retrying = false;
    this.ui.signedIn(tokens, username);
    this._scheduleRenewal(renewalDelay(tokenExpiry(tokens)));
    this._announce(tokens);
  }

  _scheduleRenewal(delay) {
    clearTimeout(this._renewal);
    this._renewal = setTimeout(() => this._renew(), delay);
    this._dueAt = Date.now() + delay;
  }

  _stopRenewal() {
    clearTimeout(this._renewal);
    this._renewal = undefined;
    this._dueAt = Infinity;
    this._renewing = null;
    this._retrying = false;
    this._epoch += 1;
  }

  /**
   * Renews the stored tokens once for every caller until it is done (timer, wake-up, apps);
   * resolves with the failure, if any.
   */
  _renew() {
    if (!this._renewing) {
      const renewing = this._renewNow().finally(() => {
        if (this._renewing === renewing) this._renewing = null;
      });
      this._renewing = renewing;
    }
    return this._renewing;
  }

  /** Renews the stored tokens: the apps stay (or get) mounted, or the session has ended. */
  async _renewNow() {
    clearTimeout(this._renewal);
    this._dueAt = Infinity;
    const epoch = this._epoch;
    const tokens = storedTokens();
    try {
      const fresh = await refreshTokens(this.auth, tokens);
      if (fresh && epoch === this._epoch) this._signedIn(fresh);
      return undefined;
    } catch (err) {
      if (epoch !== this._epoch || storedTokens()?.RefreshToken !== tokens?.RefreshToken) return err;
      if (err instanceof SessionEndedError) {
        this._end(`Your session has ended (${err.message}). Sign in again.`);
      } else {
        this._renewLater(tokens, err);
      }
      return err;
    }
  }

  /**
   * Keeps the session when Cognito could not be asked (offline): tried again after a while
   * and when the browser is back online. Until the access token expires nothing shows; then
   * the page says so (see the element's unrenewed handler).
   */
  _renewLater(tokens, err) {
    const left = tokenExpiry(tokens) - Date.now();
    const delay = Math.max(MIN_DELAY_MS, left > 0 ? Math.min(RETRY_MS, left / 2) : RETRY_MS);
    const seconds = Math.round(delay / 1000);
    console.warn(`mfe-parent: cannot renew the session (${err.message}); trying again in ${seconds} s`);
    this._retrying = true;
    this._scheduleRenewal(delay);
    if (left > 0) return;
    this.ui.unrenewed(`Your session could not be renewed: ${err.message}. Trying again…`);
  }

  /** Signs the tab out: no tokens, no apps, the login form (with `message`, if any). */
  _end(message) {
    this._stopRenewal();
    clearTokens();
    this.ui.ended(message);
    this._announce(null);
  }
}
