import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequest } from '../../src/ontapd/request-schema.js';

const parse = (o: unknown) => parseRequest(Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)));

test('a minimal request parses with defaults left to the daemon', () => {
  const r = parse({ v: 1, op: 'allocate', type: 'ipvtap', queues: 4, name: 'vm-1', mode: 'l3s', flag: 'private' });
  assert.deepEqual(r, { ok: true, request: { v: 1, op: 'allocate', type: 'ipvtap', queues: 4, name: 'vm-1', mode: 'l3s', flag: 'private' } });
});

test('each rule names its field', () => {
  const cases: Array<[unknown, string, RegExp]> = [
    [{ v: 1, op: 'allocate' }, 'type', /type is required/],
    [{ v: 1, op: 'allocate', type: 'veth' }, 'type', /must be one of ipvlan, ipvtap, macvlan, macvtap/],
    [{ v: 3, op: 'allocate', type: 'ipvlan' }, 'v', /must be 1/],
    [{ v: 1, op: 'free', type: 'ipvlan' }, 'op', /must be "allocate"/],
    [{ v: 1, op: 'allocate', type: 'macvtap', queues: 0 }, 'queues', /between 1 and 16/],
    [{ v: 1, op: 'allocate', type: 'macvtap', queues: 1.5 }, 'queues', /integer/],
    [{ v: 1, op: 'allocate', type: 'macvtap', queues: '2' }, 'queues', /number/],
    [{ v: 1, op: 'allocate', type: 'macvlan', queues: 2 }, 'queues', /must be 1 for macvlan/],
    [{ v: 1, op: 'allocate', type: 'ipvlan', name: '-web' }, 'name', /DNS label/],
    [{ v: 1, op: 'allocate', type: 'ipvlan', name: 'a'.repeat(64) }, 'name', /DNS label/],
    [{ v: 1, op: 'allocate', type: 'ipvlan', mode: 'bridge' }, 'mode', /l2, l3, l3s for ipvlan/],
    [{ v: 1, op: 'allocate', type: 'macvtap', mode: 'l2' }, 'mode', /bridge, private, vepa, passthru for macvtap/],
    [{ v: 1, op: 'allocate', type: 'macvlan', flag: 'private' }, 'flag', /only for ipvlan/],
    [{ v: 1, op: 'allocate', type: 'ipvlan', flag: 'loud' }, 'flag', /bridge, private, vepa/],
    [{ v: 1, op: 'allocate', type: 'ipvlan', extra: 1 }, 'extra', /unknown field: extra/],
  ];
  for (const [input, field, message] of cases) {
    const r = parse(input);
    assert.equal(r.ok, false, JSON.stringify(input));
    if (!r.ok) {
      assert.equal(r.error.code, 'bad-request');
      assert.equal(r.error.field, field, JSON.stringify(input));
      assert.match(r.error.message, message, JSON.stringify(r.error));
    }
  }
});

test('bytes that are not a JSON object are refused without a field', () => {
  for (const raw of ['', 'null', '[]', '"x"', '{"v":', '\u0000\u00ff']) {
    const r = parse(raw);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.error.field, undefined);
      assert.match(r.error.message, /not a JSON object/);
    }
  }
});
