// The accounts micro-frontend's UI. The heading text below is what tests change.
import { useState } from 'react';
import { demoAccountList, formatBalance } from './data.js';

export function App() {
  const [showDetails, setShowDetails] = useState(false);
  const total = demoAccountList.reduce((sum, account) => sum + account.balanceCents, 0);
  return (
    <section aria-labelledby="accounts-heading">
      <h2 id="accounts-heading">Accounts</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Account</th>
            {showDetails && <th scope="col">IBAN</th>}
            <th scope="col" className="num">Balance</th>
          </tr>
        </thead>
        <tbody>
          {demoAccountList.map((account) => (
            <tr key={account.id}>
              <td>{account.name}</td>
              {showDetails && <td className="mono">{account.iban}</td>}
              <td className="num">{formatBalance(account.balanceCents, account.currency)}</td>
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row">Total</th>
            {showDetails && <td />}
            <td className="num">{formatBalance(total, 'EUR')}</td>
          </tr>
        </tfoot>
      </table>
      <button type="button" aria-pressed={showDetails} onClick={() => setShowDetails((v) => !v)}>
        {showDetails ? 'Hide details' : 'Show details'}
      </button>
    </section>
  );
}
