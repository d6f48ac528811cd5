import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientIdError, clientIdFor, type ClientIdInput } from '../../src/dhcp/client-id.js';
import { decodeMessage, encodeClientMessage, MessageType } from '../../src/dhcp/message.js';

const salt = Buffer.from('0123456789abcdef0123456789abcdef');
// octets 6 and 8 hold neither version 4 nor variant 10 bits, so the test sees them set
const random = Buffer.from('5f1e0c2ab39dff3a3a1b2c3d4e5f6071', 'hex');
/** Computed apart from this code: python3 hmac.new(key, b'ontap/dhcp-iaid/v1\x001000\x00web', sha256)[:4], and the
 * 'dhcp-duid' digest's first 16 octets with octet 6 = (x & 0x0f) | 0x80, octet 8 = (x & 0x3f) | 0x80. */
const PINNED_WEB_1000 = 'ff' + '98a4f285' + '0004' + '193a0bd553ef88fcb561c85793976c48';

/** type, IAID, DUID type, UUID version and variant. */
function parts(id: Buffer): { type: number; iaid: string; duidType: number; uuid: string; version: number; variant: number } {
  return {
    type: id[0]!,
    iaid: id.subarray(1, 5).toString('hex'),
    duidType: id.readUInt16BE(5),
    uuid: id.subarray(7).toString('hex'),
    version: id[7 + 6]! >> 4,
    variant: id[7 + 8]! >> 6,
  };
}

function refusal(input: ClientIdInput): ClientIdError {
  try {
    clientIdFor(input);
  } catch (e) {
    if (e instanceof ClientIdError) return e;
    throw e;
  }
  assert.fail('no error');
}

test('named: 0xff, IAID, DUID-UUID (type 4) whose UUID is version 8, variant 10; 23 octets like the udhcpc fixture', () => {
  const id = clientIdFor({ name: 'web', uid: 1000, salt });
  assert.equal(id.length, 23);
  const p = parts(id);
  assert.deepEqual([p.type, p.duidType, p.version, p.variant], [255, 4, 8, 0b10]);
});

test('named: the same name, uid and host key give the same id every time (a restart keeps its lease); pinned so a change of derivation is seen', () => {
  const a = clientIdFor({ name: 'web', uid: 1000, salt });
  assert.deepEqual(clientIdFor({ name: 'web', uid: 1000, salt: Buffer.from(salt) }), a);
  assert.equal(a.toString('hex'), clientIdFor({ name: 'web', uid: 1000, salt }).toString('hex'));
  assert.equal(a.toString('hex'), 'ff' + parts(a).iaid + '0004' + parts(a).uuid);
  // what this derivation gives; changing it would hand every named workload a new lease
  assert.equal(a.toString('hex'), PINNED_WEB_1000);
});

test('named: another name, another uid (a name is its owner\'s) or another host key give another IAID and another DUID', () => {
  const a = parts(clientIdFor({ name: 'web', uid: 1000, salt }));
  for (const other of [
    { name: 'db', uid: 1000, salt },
    { name: 'web', uid: 1001, salt },
    { name: 'web', uid: 0, salt },
    { name: 'web', uid: 1000, salt: Buffer.from('another host key') },
    { name: 'web0', uid: 100, salt }, // uid and name do not run into each other
  ]) {
    const b = parts(clientIdFor(other));
    assert.notEqual(b.iaid, a.iaid, JSON.stringify({ ...other, salt: other.salt.toString() }));
    assert.notEqual(b.uuid, a.uuid, JSON.stringify({ ...other, salt: other.salt.toString() }));
  }
  // a thousand names, no two alike in either part
  const ids = Array.from({ length: 1000 }, (_, i) => parts(clientIdFor({ name: `w${i}`, uid: 1000, salt })));
  assert.equal(new Set(ids.map((p) => p.uuid)).size, 1000);
  assert.equal(new Set(ids.map((p) => p.iaid)).size, 1000);
  assert.ok(ids.every((p) => p.version === 8 && p.variant === 0b10 && p.type === 255 && p.duidType === 4));
});

test('unnamed: the IAID is the ifindex, the UUID version 4 from the random bytes; other random bytes, another id', () => {
  const id = clientIdFor({ ifindex: 7, random });
  const p = parts(id);
  assert.deepEqual([p.type, p.iaid, p.duidType, p.version, p.variant], [255, '00000007', 4, 4, 0b10]);
  // the random bytes are the UUID but for its version and variant bits
  const expected = Buffer.from(random);
  expected[6] = (expected[6]! & 0x0f) | 0x40;
  expected[8] = (expected[8]! & 0x3f) | 0x80;
  assert.equal(p.uuid, expected.toString('hex'));
  assert.deepEqual(clientIdFor({ ifindex: 7, random: Buffer.from(random) }), id); // pure
  const other = Buffer.from(random);
  other[15]! ^= 1;
  assert.notDeepEqual(clientIdFor({ ifindex: 7, random: other }), id);
  // two namespaces' ifindex 2 with their own random bytes: distinct
  assert.notDeepEqual(clientIdFor({ ifindex: 2, random }), clientIdFor({ ifindex: 2, random: other }));
});

test('bad input is refused naming the field', () => {
  assert.equal(refusal({ name: '', uid: 0, salt }).field, 'name');
  assert.equal(refusal({ name: 'a\0b', uid: 0, salt }).field, 'name');
  assert.equal(refusal({ name: 'web', uid: -1, salt }).field, 'uid');
  assert.equal(refusal({ name: 'web', uid: 1.5, salt }).field, 'uid');
  assert.equal(refusal({ name: 'web', uid: 0, salt: Buffer.alloc(0) }).field, 'salt');
  assert.equal(refusal({ ifindex: 0, random }).field, 'ifindex');
  assert.equal(refusal({ ifindex: 3, random: random.subarray(0, 15) }).field, 'random');
});

test('a DISCOVER carries it as option 61, and it decodes back unchanged', () => {
  const clientId = clientIdFor({ name: 'web', uid: 1000, salt });
  const b = encodeClientMessage({ type: MessageType.DISCOVER, xid: 9, broadcast: false, chaddr: Buffer.from('020000780002', 'hex'), clientId });
  assert.deepEqual(decodeMessage(b).clientId, clientId);
});
