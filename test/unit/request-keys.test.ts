// A request's unknown keys are the caller's text: the reply and ontapd's log show them escaped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequest, shownKey } from '../../src/ontapd/request-schema.js';

const parse = (o: object) => parseRequest(Buffer.from(JSON.stringify(o)));
const PRINTABLE = /^[\x20-\x7e]*$/;

test('a plain unknown key is shown as it is', () => {
  assert.deepEqual(parse({ v: 1, op: 'allocate', type: 'ipvlan', extra: 1 }),
    { ok: false, error: { code: 'bad-request', field: 'extra', message: 'unknown field: extra' } });
});

test('control characters (C0, C1, DEL), separators and other non-ASCII in a key are escaped, in the field and the message', () => {
  const key = 'a\u0085b\u009b31m\u001b[2J\u007f\n\u2028"\\é😀';
  const r = parse({ v: 1, op: 'allocate', type: 'ipvlan', [key]: 1 });
  assert.equal(r.ok, false);
  if (r.ok) return;
  const shown = '"a\\u0085b\\u009b31m\\u001b[2J\\u007f\\u000a\\u2028\\"\\\\\\u00e9\\ud83d\\ude00"';
  assert.equal(r.error.field, shown);
  assert.equal(r.error.message, `unknown field: ${shown}`);
  assert.match(r.error.message, PRINTABLE);
});

test('a long key is cut, and many keys are counted rather than listed', () => {
  assert.equal(shownKey('x'.repeat(65)), `"${'x'.repeat(64)}"...`);
  assert.equal(shownKey('y'.repeat(64)), 'y'.repeat(64));
  const keys = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}\u0085`, i]));
  const r = parse({ v: 1, op: 'allocate', type: 'ipvlan', ...keys });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.error.message, 'unknown fields: "k0\\u0085", "k1\\u0085", "k2\\u0085", "k3\\u0085" and 296 more');
});
