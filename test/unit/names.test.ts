import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NameRegistry } from '../../src/ontapd/names.js';
import { RequestError } from '../../src/ontapd/errors.js';

function refusal(f: () => void): { code: string; field: string | undefined } | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    assert.ok(e instanceof RequestError);
    return { code: e.code, field: e.field };
  }
}

test('a name held by one uid\'s leases is a conflict for every other uid, root included, until the last lease ends', () => {
  const names = new NameRegistry();
  names.check('web', 1000);
  names.claim('web', 1000);
  names.claim('web', 1000);
  assert.equal(refusal(() => names.check('web', 1000)), undefined, 'the holder may run it again');
  assert.deepEqual(refusal(() => names.check('web', 65534)), { code: 'conflict', field: 'name' });
  assert.deepEqual(refusal(() => names.check('web', 0)), { code: 'conflict', field: 'name' });
  names.release('web', 65534);
  names.release('web', 1000);
  assert.deepEqual(refusal(() => names.check('web', 0)), { code: 'conflict', field: 'name' }, 'one lease still holds it');
  names.release('web', 1000);
  assert.equal(refusal(() => names.check('web', 0)), undefined, 'free once the last lease ended');
});

test('a reserved name is forbidden to every other uid, held or not, and its own uid is not blocked by others', () => {
  const names = new NameRegistry(new Map([['db', 0], ['backup', 65534]]));
  assert.deepEqual(refusal(() => names.check('db', 65534)), { code: 'forbidden', field: 'name' });
  assert.equal(refusal(() => names.check('db', 0)), undefined);
  assert.deepEqual(refusal(() => names.check('backup', 0)), { code: 'forbidden', field: 'name' });
  assert.equal(refusal(() => names.check('backup', 65534)), undefined);
  assert.equal(refusal(() => names.check('other', 65534)), undefined, 'unreserved names stay first come');
});
