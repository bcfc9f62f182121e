// Demo data of the accounts micro-frontend (no backend in this demo).
export const demoAccountList = [
  { id: 'chk', name: 'Everyday checking', iban: 'DE89 3704 0044 0532 0130 00', balanceCents: 254_312, currency: 'EUR' },
  { id: 'sav', name: 'Savings', iban: 'DE02 1203 0000 0000 2020 51', balanceCents: 1_200_000, currency: 'EUR' },
  { id: 'trv', name: 'Travel', iban: 'DE75 5121 0800 1245 1261 99', balanceCents: 8_750, currency: 'EUR' },
];

export function formatBalance(cents, currency) {
  return new Intl.NumberFormat('en-US', { style: 'currency', currency }).format(cents / 100);
}
