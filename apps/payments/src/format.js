// Pure helpers of the payments micro-frontend (unit-tested in test/format.test.js).

/** Formats an amount in minor units (cents) as a currency string, e.g. 1234 -> "€12.34". */
export function formatAmount(cents, currency = 'EUR', locale = 'en-US') {
  if (!Number.isInteger(cents)) throw new TypeError(`amount must be an integer number of cents, got ${cents}`);
  return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(cents / 100);
}

/** Parses user input such as "12", "12.5" or "1,234.56" into cents; null when invalid or not positive. */
export function parseAmount(text) {
  const cleaned = String(text ?? '').trim().replace(/,/g, '');
  if (!/^\d+(\.\d{1,2})?$/.test(cleaned)) return null;
  const [whole, fraction = ''] = cleaned.split('.');
  const cents = Number(whole) * 100 + Number(fraction.padEnd(2, '0'));
  return cents > 0 && Number.isSafeInteger(cents) ? cents : null;
}
