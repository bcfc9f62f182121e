// <mfe-parent>: the host layout (header, navigation, main area), the Cognito login
// screen and the mounting of the micro-frontends declared in its
// <template data-mfe-mount> child. Mounted elements live in the light DOM of
// <mfe-parent> and are shown through the <slot> in the main area. The signed-in session
// (renewal, retry, window.mfeAuth) is session.js's; the element shows its changes.
import { LitElement, html } from 'lit';
import { SignInError, usernameFromIdToken } from './auth.js';
import { readConfig } from './config.js';
import { Session } from './session.js';
import { styles } from './styles.js';

const MOUNTED_ATTR = 'data-mfe-mounted';
const ACTIVE_ATTR = 'data-mfe-active';

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
    this.session = new Session(this.auth, {
      signedIn: (tokens, username) => this._onSignedIn(tokens, username),
      renewing: () => this._showRenewing(),
      signedOut: () => this._showLogin(),
      ended: (message) => this._onEnded(message),
      unrenewed: (message) => this._onUnrenewed(message),
    });
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
    this.session.connect();
    if (!this.auth) this._mount();
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    this.session.disconnect();
  }

  /** The session started or was renewed: the apps, under the user's name. */
  _onSignedIn(tokens, username) {
    this.user = usernameFromIdToken(tokens.IdToken) || username || this.user;
    this.error = '';
    this.notice = '';
    this._mount();
  }

  /** The session is over: no apps, the login form (with `message`, if any). */
  _onEnded(message) {
    this._unmount();
    this.user = '';
    this.error = message;
    this.notice = '';
    this._showLogin();
  }

  /**
   * The access token has expired and could not be renewed (offline); the session retries.
   * The mounted apps stay, under a notice; a load shows the login form saying why.
   */
  _onUnrenewed(message) {
    if (this.view === 'mounted') {
      this.notice = message;
    } else {
      this.error = message;
      this._showLogin();
    }
  }

  _showRenewing() {
    this.view = 'renewing';
    this.setAttribute('data-mfe-state', 'renewing');
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
      await this.session.signIn(username, password);
      form.reset();
    } catch (err) {
      this.error = err instanceof SignInError ? err.message : `Sign-in failed: ${err}`;
    } finally {
      this.busy = false;
    }
  }

  _onSignOut() {
    this.session.signOut();
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
