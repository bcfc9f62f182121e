// The payments micro-frontend's UI (a Lit element). The heading text below is what tests change.
import { LitElement, css, html } from 'lit';
import { formatAmount, parseAmount } from './format.js';

const initialList = [
  { id: 3, payee: 'City Power & Light', cents: 8_432, date: '2026-11-20' },
  { id: 2, payee: 'Corner Bakery', cents: 1_250, date: '2026-11-18' },
  { id: 1, payee: 'Rent', cents: 95_000, date: '2026-11-01' },
];

export class PaymentElement extends LitElement {
  static properties = {
    items: { state: true },
    error: { state: true },
  };

  static styles = css`
    :host { display: block; font-family: system-ui, sans-serif; color: #1f2937; }
    section { border: 1px solid #d1d5db; border-radius: 8px; padding: 1rem 1.25rem; background: #fff; }
    h2 { margin: 0 0 0.75rem; font-size: 1.25rem; color: #047857; }
    ul { list-style: none; margin: 0 0 1rem; padding: 0; }
    li { display: flex; justify-content: space-between; gap: 1rem; padding: 0.35rem 0;
      border-bottom: 1px solid #e5e7eb; }
    .date { color: #6b7280; font-size: 0.85em; margin-left: 0.5rem; }
    .amount { font-variant-numeric: tabular-nums; }
    form { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: end; }
    label { display: flex; flex-direction: column; font-size: 0.85em; gap: 0.2rem; }
    input { font: inherit; padding: 0.3rem 0.5rem; border: 1px solid #9ca3af; border-radius: 6px; }
    button { font: inherit; padding: 0.35rem 0.8rem; border-radius: 6px; border: 1px solid #047857;
      background: #ecfdf5; color: #047857; cursor: pointer; }
    .error { color: #b91c1c; width: 100%; margin: 0; }
  `;

  constructor() {
    super();
    // Reactive state is set here, not as class fields (they would shadow Lit's accessors).
    this.items = initialList;
    this.error = '';
  }

  _onSubmit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const payee = form.elements.payee.value.trim();
    const cents = parseAmount(form.elements.amount.value);
    if (!payee || cents === null) {
      this.error = 'Enter a payee and a positive amount (e.g. 12.50).';
      return;
    }
    const id = Math.max(0, ...this.items.map((item) => item.id)) + 1;
    const date = new Date().toISOString().slice(0, 10);
    this.items = [{ id, payee, cents, date }, ...this.items];
    this.error = '';
    form.reset();
  }

  render() {
    return html`
      <section aria-labelledby="payments-heading">
        <h2 id="payments-heading">Payments</h2>
        <ul aria-label="Recent payments">
          ${this.items.map(
            (item) => html`<li>
              <span>${item.payee}<span class="date">${item.date}</span></span>
              <span class="amount">${formatAmount(item.cents)}</span>
            </li>`,
          )}
        </ul>
        <form @submit=${this._onSubmit} novalidate>
          <label>Payee <input name="payee" autocomplete="off" /></label>
          <label>Amount (EUR) <input name="amount" inputmode="decimal" autocomplete="off" /></label>
          <button type="submit">Send payment</button>
          ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : ''}
        </form>
      </section>
    `;
  }
}
