import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAttrs, decodeMessages, HeaderFlag, netlinkErrorFrom, parseError } from '../../src/netns/netlink/index.js';
import {
  addrPolicy, decodeAddress, delAddressRequest, dumpAddressesRequest, formatIPv4, formatIPv6, IFA, IFADDRMSG_LEN, newAddressRequest, RTM,
} from '../../src/netns/rtnl/index.js';
import { eventsFromDatagram } from '../../src/netns/route-monitor.js';
import { AddressFlag, LIFETIME_FOREVER, type Address, type AddressCreate } from '../../src/netns/types.js';
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

/** The lease address of the fixtures: 10.1.2.3/24 on up1. */
function lease(f: Fixture, extra: Partial<AddressCreate> = {}): AddressCreate {
  return { ifindex: metaNumber(f, 'up1'), family: 4, address: '10.1.2.3', prefixLength: 24, validSeconds: 100, preferredSeconds: 100, ...extra };
}

function replyError(f: Fixture) {
  const [m] = decodeMessages(f.received[0]!);
  return netlinkErrorFrom('test', m!.header.seq, parseError(m!));
}

describe('RTM_NEWADDR / RTM_DELADDR requests match iproute2 byte for byte', () => {
  test('ip addr add 10.1.2.3/24 dev up1 valid_lft 100 preferred_lft 100', () => {
    const f = loadFixture('addr-new-lifetimes');
    compareRequest(newAddressRequest({ ...lease(f), replace: false }), request(f), IFADDRMSG_LEN, addrPolicy);
  });
  test('ip addr replace ... valid_lft 200 preferred_lft 150 (NLM_F_CREATE|NLM_F_REPLACE)', () => {
    const f = loadFixture('addr-replace-lifetimes');
    compareRequest(newAddressRequest({ ...lease(f, { validSeconds: 200, preferredSeconds: 150 }), replace: true }), request(f), IFADDRMSG_LEN, addrPolicy);
  });
  test('ip addr add 10.1.2.4/24 brd + ... valid_lft forever preferred_lft forever', () => {
    const f = loadFixture('addr-new-brd-forever');
    const req = newAddressRequest({
      ...lease(f, { address: '10.1.2.4', broadcast: '10.1.2.255', validSeconds: LIFETIME_FOREVER, preferredSeconds: LIFETIME_FOREVER }),
      replace: false,
    });
    compareRequest(req, request(f), IFADDRMSG_LEN, addrPolicy);
  });
  test('ip addr del 10.1.2.3/24 dev up1', () => {
    const f = loadFixture('addr-del');
    compareRequest(delAddressRequest(lease(f)), request(f), IFADDRMSG_LEN, addrPolicy);
    compareRequest(delAddressRequest(lease(loadFixture('addr-del-gone'))), request(loadFixture('addr-del-gone')), IFADDRMSG_LEN, addrPolicy);
  });

  test('IFA_CACHEINFO carries preferred then valid, stamps zero', () => {
    const req = newAddressRequest({ ifindex: 5, family: 4, address: '192.0.2.7', prefixLength: 28, validSeconds: 30, preferredSeconds: 20, replace: false });
    const cache = decodeAttrs(req.body, addrPolicy, IFADDRMSG_LEN).raw(IFA.CACHEINFO)!;
    assert.equal(cache.toString('hex'), '14000000' + '1e000000' + '00'.repeat(8));
    assert.equal(req.body.readUInt8(3), 0, 'scope universe');
    assert.equal(newAddressRequest({ ifindex: 1, family: 4, address: '127.0.0.2', prefixLength: 8, validSeconds: 9, preferredSeconds: 9, replace: false }).body.readUInt8(3), 254, 'scope host for 127/8, as iproute2');
  });

  test('what the kernel would refuse is a RangeError before anything is sent', () => {
    const ok = { ifindex: 2, family: 4 as const, address: '10.1.2.3', prefixLength: 24, validSeconds: 30, preferredSeconds: 20, replace: false };
    assert.doesNotThrow(() => newAddressRequest(ok));
    assert.doesNotThrow(() => newAddressRequest({ ...ok, preferredSeconds: 0 }), 'deprecated at once is allowed');
    for (const bad of [
      { validSeconds: 0, preferredSeconds: 0 },
      { preferredSeconds: 31 },
      { validSeconds: 2 ** 32 },
      { validSeconds: 1.5 },
      { preferredSeconds: -1 },
      { address: '10.1.2' },
      { address: '2001:db8::1' },
      { broadcast: '10.1.2.256' },
      { prefixLength: 33 },
      { ifindex: 0 },
      { family: 6 as unknown as 4 },
    ]) assert.throws(() => newAddressRequest({ ...ok, ...bad }), RangeError, JSON.stringify(bad));
    assert.throws(() => delAddressRequest({ ...ok, address: 'x' }), RangeError);
  });
});

describe('address replies with lifetimes', () => {
  test('a leased address reports what remains of its lifetimes, and is not permanent', () => {
    const f = loadFixture('addr-dump-lifetimes');
    assert.deepEqual(replyAddresses(f), [{
      nsid: undefined, family: 4, ifindex: metaNumber(f, 'up1'), address: '10.1.2.3', prefixLength: 24, scope: 0,
      flags: 0, validLifetime: 200, preferredLifetime: 150,
    }]);
  });

  test('the kernel\'s refusals: EEXIST for the same address again, EADDRNOTAVAIL for one gone', () => {
    const exists = replyError(loadFixture('addr-new-exists'));
    assert.deepEqual([exists.code, exists.extack], ['EEXIST', 'ipv4: Address already assigned']);
    const gone = replyError(loadFixture('addr-del-gone'));
    assert.deepEqual([gone.code, gone.extack], ['EADDRNOTAVAIL', 'ipv4: Address not found']);
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
