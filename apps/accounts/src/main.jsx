// Entry of the accounts micro-frontend: React 19 rendered inside <mfe-accounts>.
import { createRoot } from 'react-dom/client';
import { App } from './accounts-app.jsx';
import { styles } from './styles.js';

const TAG = 'mfe-accounts';

class MfeAccountsElement extends HTMLElement {
  constructor() {
    super();
    this._root = null;
    const shadow = this.attachShadow({ mode: 'open' });
    if ('adoptedStyleSheets' in Document.prototype && 'replaceSync' in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(styles);
      shadow.adoptedStyleSheets = [sheet];
    } else {
      const style = document.createElement('style');
      style.textContent = styles;
      shadow.append(style);
    }
    this._container = document.createElement('div');
    this._container.className = 'root';
    shadow.append(this._container);
  }

  connectedCallback() {
    if (this._root) return;
    this._root = createRoot(this._container);
    this._root.render(<App />);
  }

  disconnectedCallback() {
    const root = this._root;
    this._root = null;
    root?.unmount();
  }
}

if (!customElements.get(TAG)) customElements.define(TAG, MfeAccountsElement);
