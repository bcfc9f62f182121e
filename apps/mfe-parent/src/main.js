// Entry of the parent (host) app: registers <mfe-parent>.
import { MfeParentElement } from './mfe-parent.js';

const TAG = 'mfe-parent';

if (!customElements.get(TAG)) customElements.define(TAG, MfeParentElement);
