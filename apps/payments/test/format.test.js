import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAmount, parseAmount } from '../src/format.js';

test('formatAmount formats cents as a currency string', () => {
  assert.equal(formatAmount(1234), '€12.34');
  assert.equal(formatAmount(123456789, 'USD'), '$1,234,567.89');
  assert.equal(formatAmount(5), '€0.05');
});

test('formatAmount rejects non-integer amounts', () => {
  assert.throws(() => formatAmount(12.5), TypeError);
});

test('parseAmount accepts decimal input and returns cents', () => {
  assert.equal(parseAmount('12'), 1200);
  assert.equal(parseAmount(' 12.5 '), 1250);
  assert.equal(parseAmount('1,234.56'), 123456);
});

test('parseAmount rejects invalid or non-positive input', () => {
  for (const bad of ['', 'abc', '-3', '0', '1.234', null]) assert.equal(parseAmount(bad), null, String(bad));
});
