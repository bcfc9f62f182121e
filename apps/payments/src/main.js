// Entry of the payments micro-frontend: registers the Lit element <mfe-payments>.
import { PaymentElement } from './payments-app.js';

const TAG = 'mfe-payments';

if (!customElements.get(TAG)) customElements.define(TAG, PaymentElement);
