import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessages, HeaderFlag } from '../../src/netns/netlink/index.js';
import { addrPolicy, decodeAddress, dumpAddressesRequest, formatIPv4, formatIPv6, IFADDRMSG_LEN, RTM } from '../../src/netns/rtnl/index.js';
import { eventsFromDatagram } from '../../src/netns/route-monitor.js';
import { AddressFlag, type Address } from '../../src/netns/types.js';
import { compareRequest } from '../fixtures/netlink/compare.js';
import { loadFixture, metaNumber, request, type Fixture } from '../fixtures/netlink/load.js';

function replyAddresses(f: Fixture): Address[] {
  return f.received
    .flatMap((d) => decodeMessages(d))
    .filter((m) => m.header.type === RTM.NEWADDR)
    .map((m) => decodeAddress(m.payload, m.offset + 16))
    .filter((a): a is Address => a !== undefined);
}

describe('RTM_GETADDR dump requests match iproute2 byte for byte', () => {
  test('ip addr show', () => {
    compareRequest(dumpAddressesRequest(), request(loadFixture('addr-dump')), IFADDRMSG_LEN, addrPolicy);
  });
  test('ip -4 addr show dev up0 (strict filter: ifa_family and ifa_index)', () => {
    const f = loadFixture('addr-dump-4-dev');
    compareRequest(dumpAddressesRequest({ family: 4, ifindex: metaNumber(f, 'up0') }), request(f), IFADDRMSG_LEN, addrPolicy);
  });
  test('ip -6 addr show', () => {
    compareRequest(dumpAddressesRequest({ family: 6 }), request(loadFixture('addr-dump-6')), IFADDRMSG_LEN, addrPolicy);
  });
  test('with IFA_TARGET_NETNSID as the hand-built fixture', () => {
    const f = loadFixture('addr-dump-target-nsid');
    compareRequest(dumpAddressesRequest({ family: 4, targetNsid: metaNumber(f, 'nsidB') }), request(f), IFADDRMSG_LEN, addrPolicy);
  });
});

describe('decoding kernel address replies', () => {
  test('IPv4 and IPv6 addresses, flags, scope, lifetimes', () => {
    const f = loadFixture('addr-dump');
    const up0 = metaNumber(f, 'up0');
    const addrs = replyAddresses(f);
    const v4 = addrs.find((a) => a.address === '192.0.2.1');
    assert.deepEqual(v4, {
      nsid: undefined, family: 4, ifindex: up0, address: '192.0.2.1', prefixLength: 24, scope: 0,
      flags: AddressFlag.permanent, validLifetime: 0xffffffff, preferredLifetime: 0xffffffff,
    });
    const v6 = addrs.find((a) => a.address === '2001:db8::1');
    assert.equal(v6?.family, 6);
    assert.equal(v6?.prefixLength, 64);
    assert.equal(v6?.flags, AddressFlag.permanent | AddressFlag.nodad);
    const ll = addrs.filter((a) => a.address.startsWith('fe80::'));
    assert.ok(ll.length >= 1 && ll.every((a) => a.scope === 253 && a.prefixLength === 64));
  });

  test('a filtered dump is flagged NLM_F_DUMP_FILTERED and holds only what was asked', () => {
    const f = loadFixture('addr-dump-4-dev');
    const done = decodeMessages(f.received[f.received.length - 1]!).find((m) => m.header.type === 3)!;
    assert.ok(done.header.flags & HeaderFlag.dumpFiltered);
    assert.deepEqual(replyAddresses(f).map((a) => a.address), ['192.0.2.1']);
  });

  test('IFA_TARGET_NETNSID is echoed in every reply and becomes Address.nsid', () => {
    const f = loadFixture('addr-dump-target-nsid');
    const addrs = replyAddresses(f);
    assert.deepEqual(addrs.map((a) => [a.address, a.prefixLength, a.nsid]), [['198.51.100.7', 24, metaNumber(f, 'nsidB')]]);
  });

  test('RTM_NEWADDR / RTM_DELADDR events', () => {
    const f = loadFixture('event-addr');
    const events = f.received.flatMap((d) => eventsFromDatagram(d, undefined).events);
    assert.deepEqual(events.map((e) => e.type), ['newaddr', 'deladdr']);
    for (const e of events) if (e.type === 'newaddr' || e.type === 'deladdr') {
      assert.equal(e.address.address, '192.0.2.9');
      assert.equal(e.address.flags & AddressFlag.secondary, AddressFlag.secondary);
      assert.equal(e.nsid, undefined);
    }
  });
});

describe('inet_ntop', () => {
  test('IPv6 as glibc prints it', () => {
    // Expected strings from Python's socket.inet_ntop (glibc) on this machine.
    const cases: Array<[string, string]> = [
      ['00000000000000000000000000000000', '::'],
      ['00000000000000000000000000000001', '::1'],
      ['20010db8000000000000000000000001', '2001:db8::1'],
      ['fe800000000000000000000000010002', 'fe80::1:2'],
      ['00010000000000010000000000000001', '1:0:0:1::1'],
      ['00010000000000000001000000000001', '1::1:0:0:1'],
      ['00000000000100000000000000000000', '0:0:1::'],
      ['00010002000300040005000600070000', '1:2:3:4:5:6:7:0'],
      ['00010000000200030004000500060007', '1:0:2:3:4:5:6:7'],
      ['00000000000000000000ffffc0000201', '::ffff:192.0.2.1'],
      ['000000000000000000000000c0000201', '::192.0.2.1'],
      ['00000000000000000000ffff00000000', '::ffff:0.0.0.0'],
      ['00000000000000000000000100000000', '::1:0:0'],
      ['ff0200000000000000000001ff000001', 'ff02::1:ff00:1'],
      ['20010db8000000000001000000000000', '2001:db8:0:0:1::'],
    ];
    for (const [hex, text] of cases) assert.equal(formatIPv6(Buffer.from(hex, 'hex')), text, hex);
    assert.equal(formatIPv4(Buffer.from([10, 0, 0, 255])), '10.0.0.255');
    assert.throws(() => formatIPv6(Buffer.alloc(4)), RangeError);
  });
});
