// <mfe-parent>: the host layout (header, navigation, main area), the Cognito login
// screen and the mounting of the micro-frontends declared in its
// <template data-mfe-mount> child. Mounted elements live in the light DOM of
// <mfe-parent> and are shown through the <slot> in the main area.
import { LitElement, html } from 'lit';
import {
  SessionEndedError,
  SignInError,
  clearTokens,
  loadTokens,
  refreshTokens,
  signIn,
  signOut,
  storedTokens,
  tokenExpiry,
  usernameFromIdToken,
} from './auth.js';
import { readConfig } from './config.js';
import { styles } from './styles.js';

const MOUNTED_ATTR = 'data-mfe-mounted';
const ACTIVE_ATTR = 'data-mfe-active';
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

/** "mfe-accounts" -> "Accounts"; an element's data-mfe-label wins. */
function labelOf(element) {
  if (element.dataset.mfeLabel) return element.dataset.mfeLabel;
  const name = element.localName.replace(/^mfe-/, '').replace(/-/g, ' ');
  return name.charAt(0).toUpperCase() + name.slice(1);
}

export class MfeParentElement extends LitElement {
  static properties = {
    view: { state: true }, // 'login' | 'renewing' (expired tokens at load) | 'mounted'
    busy: { state: true },
    error: { state: true },
    notice: { state: true }, // mounted, but the expired tokens could not be renewed yet
    user: { state: true },
    links: { state: true },
  };

  static styles = styles;

  constructor() {
    super();
    // Reactive state is set here, not as class fields (they would shadow Lit's accessors).
    this.config = readConfig();
    this.view = 'login';
    this.busy = false;
    this.error = '';
    this.notice = '';
    this.user = '';
    this.links = [];
    this._renewal = undefined; // the renewal timer
    this._dueAt = Infinity; // when that timer is due: a hidden tab's timers fire late, if at all
    this._renewing = null; // the renewal under way, shared by whoever asks meanwhile
    this._epoch = 0; // bumped by a sign-out or disconnect: a renewal under way then is dropped
    this._retrying = false; // a renewal failed for want of Cognito: try again once online
    this._onOnline = () => this._retrying && this._renew();
    // Chrome throttles a background tab's timers (up to a minute): catch up when it is back.
    this._onWake = () => document.visibilityState === 'visible' && Date.now() >= this._dueAt && this._renew();
    this._api = { session: () => this._session() }; // window.mfeAuth
  }

  get auth() {
    return this.config.auth;
  }

  /**
   * Mounts the apps when the tab holds a live session; expired tokens are renewed first
   * (the login form only when Cognito refuses the refresh token).
   */
  connectedCallback() {
    super.connectedCallback();
    window.mfeAuth = this._api;
    if (!this.auth) {
      this._mount();
      return;
    }
    window.addEventListener('online', this._onOnline);
    window.addEventListener('focus', this._onWake);
    document.addEventListener('visibilitychange', this._onWake);
    const tokens = loadTokens();
    if (tokens) {
      this._signedIn(tokens);
    } else if (storedTokens()) {
      this.view = 'renewing';
      this.setAttribute('data-mfe-state', 'renewing');
      this._renew();
    } else {
      this._showLogin();
    }
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    window.removeEventListener('online', this._onOnline);
    window.removeEventListener('focus', this._onWake);
    document.removeEventListener('visibilitychange', this._onWake);
    if (window.mfeAuth === this._api) delete window.mfeAuth;
    this._stopRenewal();
  }

  /**
   * `window.mfeAuth.session()`, the apps' way to a token that is valid now (Amplify's
   * fetchAuthSession): the tokens, renewed first when they expire within a minute.
   * Rejects when the tab is signed out, or when expired tokens could not be renewed.
   */
  async _session() {
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
  _signedIn(tokens) {
    this.user = usernameFromIdToken(tokens.IdToken) || this.user;
    this.error = '';
    this.notice = '';
    this._retrying = false;
    this._mount();
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
        this._endSession(`Your session has ended (${err.message}). Sign in again.`);
      } else {
        this._renewLater(tokens, err);
      }
      return err;
    }
  }

  /**
   * Keeps the session when Cognito could not be asked (offline): tried again after a while
   * and when the browser is back online. Until the access token expires nothing shows; then
   * the mounted apps stay, under a notice, and a load shows the login form saying why.
   */
  _renewLater(tokens, err) {
    const left = tokenExpiry(tokens) - Date.now();
    const delay = Math.max(MIN_DELAY_MS, left > 0 ? Math.min(RETRY_MS, left / 2) : RETRY_MS);
    const seconds = Math.round(delay / 1000);
    console.warn(`mfe-parent: cannot renew the session (${err.message}); trying again in ${seconds} s`);
    this._retrying = true;
    this._scheduleRenewal(delay);
    if (left > 0) return;
    const message = `Your session could not be renewed: ${err.message}. Trying again…`;
    if (this.view === 'mounted') {
      this.notice = message;
    } else {
      this.error = message;
      this._showLogin();
    }
  }

  /** Signs the tab out: no tokens, no apps, the login form (with `message`, if any). */
  _endSession(message) {
    this._stopRenewal();
    clearTokens();
    this._unmount();
    this.user = '';
    this.error = message;
    this.notice = '';
    this._showLogin();
    this._announce(null);
  }

  _showLogin() {
    this.view = 'login';
    this.setAttribute('data-mfe-state', 'login');
  }

  /** Clones the <template data-mfe-mount> content into the main area, once. */
  _mount() {
    this.view = 'mounted';
    this.setAttribute('data-mfe-state', 'mounted');
    if (this.querySelector(`:scope > [${MOUNTED_ATTR}]`)) {
      this._collectLinks();
      return;
    }
    const template = this.querySelector(':scope > template[data-mfe-mount]');
    if (!template) {
      // Defined before the parser reached our children: try again once the document is parsed.
      if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', () => this.view === 'mounted' && this._mount(), { once: true });
      } else {
        console.warn('mfe-parent: no <template data-mfe-mount> child, nothing to mount');
      }
      return;
    }
    const fragment = document.importNode(template.content, true);
    for (const child of fragment.children) child.setAttribute(MOUNTED_ATTR, '');
    // Text nodes between the elements are dropped; only elements are mounted.
    for (const node of [...fragment.childNodes]) if (node.nodeType !== Node.ELEMENT_NODE) node.remove();
    this.append(fragment);
    this._collectLinks();
  }

  _unmount() {
    for (const element of this.querySelectorAll(`:scope > [${MOUNTED_ATTR}]`)) element.remove();
    this.links = [];
  }

  _collectLinks() {
    this.links = [...this.querySelectorAll(`:scope > [${MOUNTED_ATTR}]`)]
      .filter((element) => element.localName.includes('-'))
      .map((element) => ({ element, id: element.localName, label: labelOf(element) }));
  }

  _onNavClick(event, link) {
    event.preventDefault();
    for (const element of this.querySelectorAll(`:scope > [${ACTIVE_ATTR}]`)) element.removeAttribute(ACTIVE_ATTR);
    link.element.setAttribute(ACTIVE_ATTR, '');
    link.element.scrollIntoView({ behavior: 'smooth', block: 'start' });
    this.requestUpdate();
  }

  async _onSubmit(event) {
    event.preventDefault();
    if (this.busy) return;
    const form = event.currentTarget;
    const username = form.elements.username.value.trim();
    const password = form.elements.password.value;
    if (!username || !password) {
      this.error = 'Enter your username and password.';
      return;
    }
    this.busy = true;
    this.error = '';
    try {
      const previous = storedTokens(); // a session kept for its renewal (offline at load)
      const tokens = await signIn(this.auth, username, password);
      form.reset();
      this.user = username;
      this._stopRenewal(); // a renewal still pending for the previous session must not run
      if (previous && previous.RefreshToken !== tokens.RefreshToken) signOut(this.auth, previous);
      this._signedIn(tokens);
    } catch (err) {
      this.error = err instanceof SignInError ? err.message : `Sign-in failed: ${err}`;
    } finally {
      this.busy = false;
    }
  }

  /** Signs the tab out at once, then ends the session at Cognito (best effort, never awaited). */
  _onSignOut() {
    const tokens = storedTokens();
    this._endSession('');
    signOut(this.auth, tokens);
  }

  render() {
    const mounted = this.view === 'mounted';
    return html`
      <header>
        <h1 class="title">MFE Demo</h1>
        ${this._renderUser(mounted)}
      </header>
      ${mounted && this.links.length ? this._renderNav() : ''}
      <main>
        ${mounted && this.notice ? html`<p class="error notice" role="alert">${this.notice}</p>` : ''}
        ${this.view === 'renewing' ? html`<p class="hint" role="status">Renewing your session…</p>` : ''}
        ${mounted || this.view === 'renewing' ? '' : this._renderLogin()}
        <div class="apps" ?hidden=${!mounted}><slot></slot></div>
      </main>
    `;
  }

  _renderUser(mounted) {
    if (!this.auth) return html`<span class="user">Local (no sign-in)</span>`;
    if (!mounted) return '';
    return html`
      <span class="user">Signed in as <strong class="username">${this.user || 'unknown user'}</strong></span>
      <button type="button" class="sign-out" @click=${this._onSignOut}>Sign out</button>
    `;
  }

  _renderNav() {
    return html`
      <nav aria-label="Micro-frontends">
        ${this.links.map(
          (link) => html`<a
            href="#${link.id}"
            class=${link.element.hasAttribute(ACTIVE_ATTR) ? 'active' : ''}
            aria-current=${link.element.hasAttribute(ACTIVE_ATTR) ? 'true' : 'false'}
            @click=${(event) => this._onNavClick(event, link)}
            >${link.label}</a
          >`,
        )}
      </nav>
    `;
  }

  _renderLogin() {
    return html`
      <form class="login" novalidate @submit=${this._onSubmit} aria-labelledby="login-title">
        <h2 id="login-title">Welcome</h2>
        <p class="hint">Log in with your user pool account.</p>
        <label>Username <input name="username" autocomplete="username" ?disabled=${this.busy} /></label>
        <label>Password <input name="password" type="password" autocomplete="current-password" ?disabled=${this.busy} /></label>
        <button type="submit" ?disabled=${this.busy} aria-busy=${this.busy ? 'true' : 'false'}>Sign in</button>
        ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : ''}
      </form>
    `;
  }
}
