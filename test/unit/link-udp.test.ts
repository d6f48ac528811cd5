// The byte layouts openLinkSocket hands to setsockopt (pure; the kernel side is in
// test/integration/link-udp.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import { deviceNameBytes, ipMreqn, ipv6Mreq } from '../../src/netns/link-udp.js';
import { parseIPv4, parseIPv6 } from '../../src/netns/rtnl/inet.js';

/** A C int in host byte order, as the kernel reads imr_ifindex / ipv6mr_interface. */
function hostInt(v: number): number[] {
  const b = Buffer.alloc(4);
  if (endianness() === 'LE') b.writeInt32LE(v);
  else b.writeInt32BE(v);
  return [...b];
}

test('ipMreqn: imr_multiaddr (network order), imr_address any, imr_ifindex (host order): 12 bytes', () => {
  assert.deepEqual([...ipMreqn(parseIPv4('224.0.0.251'), 0x01020304)], [224, 0, 0, 251, 0, 0, 0, 0, ...hostInt(0x01020304)]);
  // IP_MULTICAST_IF by index: no group.
  assert.deepEqual([...ipMreqn(undefined, 7)], [0, 0, 0, 0, 0, 0, 0, 0, ...hostInt(7)]);
});

test('ipv6Mreq: ipv6mr_multiaddr then ipv6mr_interface: 20 bytes', () => {
  const b = ipv6Mreq(parseIPv6('ff02::fb')!, 4001);
  assert.equal(b.length, 20);
  assert.deepEqual([...b.subarray(0, 16)], [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb]);
  assert.deepEqual([...b.subarray(16)], hostInt(4001));
});

test('deviceNameBytes: 1-15 bytes without NUL or "/"; longer names are refused, not cut', () => {
  assert.deepEqual(deviceNameBytes('veth-b'), Buffer.from('veth-b'));
  assert.deepEqual(deviceNameBytes('a'.repeat(15)), Buffer.from('a'.repeat(15)));
  // SO_BINDTODEVICE would bind to the 15-byte prefix of these.
  for (const bad of ['', 'a'.repeat(16), 'é'.repeat(8), 'a\0b', 'a/b']) assert.equal(deviceNameBytes(bad), undefined, JSON.stringify(bad));
});
