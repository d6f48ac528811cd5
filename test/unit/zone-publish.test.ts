import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ZoneModel } from '../../src/ontap-zone/model.js';
import { publish, type Publication } from '../../src/ontap-zone/publish.js';
import type { Address, Link } from '../../src/netns/types.js';

const opts = { domain: 'example.test', reserved: new Set(['lan', 'wan', 'ns']) };

function link(ifindex: number, alias: string | undefined, up = true, ifname = `ot${ifindex}`): Link {
  return {
    nsid: undefined, ifindex, ifname, flags: up ? 1 : 0, mtu: 1500, address: undefined, alias, group: undefined,
    parentIfindex: undefined, linkNetnsid: undefined, kind: 'macvlan', data: undefined, numTxQueues: undefined,
    numRxQueues: undefined, addrGenMode: undefined,
  };
}

function addr(ifindex: number, address: string, flags = 0x80, prefixLength?: number): Address {
  const family = address.includes(':') ? 6 : 4;
  return { nsid: undefined, family, ifindex, address, prefixLength: prefixLength ?? (family === 4 ? 24 : 64), scope: 0, flags, validLifetime: undefined, preferredLifetime: undefined };
}

function addresses(pub: Publication, name: string): string[] {
  return pub.workloads.find((w) => w.name === name)?.addresses.map((a) => `${a.cls} ${a.address}`) ?? [];
}

describe('ontap-zone model and publication rules', () => {
  test('a workload is a link with an alias; its usable addresses by class, sorted', () => {
    const m = new ZoneModel();
    m.touchNamespace(3);
    m.upsertLink(3, link(1, undefined, true, 'lo'));
    m.upsertLink(3, link(2, 'web1'));
    for (const a of ['10.77.1.10', '203.0.113.10', '2001:db8:1::10', 'fd00:77::10', '169.254.7.10', 'fe80::1', '127.0.0.1']) m.upsertAddress(3, addr(2, a));
    m.upsertAddress(3, addr(1, '127.0.0.1'));
    const pub = publish(m, opts);
    assert.deepEqual(pub.workloads.map((w) => w.name), ['web1']);
    assert.deepEqual(addresses(pub, 'web1'), [
      'wan 203.0.113.10', 'wan 2001:db8:1::10', 'lan 10.77.1.10', 'lan fd00:77::10', 'local 169.254.7.10', 'local fe80::1',
    ]);
  });

  test('tentative, dadfailed and IPv6 temporary addresses are not published; IPv4 secondaries are', () => {
    const m = new ZoneModel();
    m.touchNamespace(1);
    m.upsertLink(1, link(2, 'w'));
    m.upsertAddress(1, addr(2, '2001:db8::1', 0x40)); // tentative
    m.upsertAddress(1, addr(2, '2001:db8::2', 0x40 | 0x08)); // dadfailed
    m.upsertAddress(1, addr(2, '2001:db8::3', 0x01)); // temporary (privacy)
    m.upsertAddress(1, addr(2, '2001:db8::4', 0x04 | 0x40)); // optimistic, DAD running
    m.upsertAddress(1, addr(2, '203.0.113.9', 0x01)); // IPv4 secondary
    assert.deepEqual(addresses(publish(m, opts), 'w'), ['wan 203.0.113.9']);
    // DAD completes: the kernel reports the address again without IFA_F_TENTATIVE.
    m.upsertAddress(1, addr(2, '2001:db8::1', 0x80));
    assert.deepEqual(addresses(publish(m, opts), 'w'), ['wan 203.0.113.9', 'wan 2001:db8::1']);
  });

  test('deprecated addresses only where a (class, family) has no preferred one', () => {
    const m = new ZoneModel();
    m.touchNamespace(1);
    m.upsertLink(1, link(2, 'w'));
    m.upsertAddress(1, addr(2, '2001:db8:1::1', 0x20)); // old prefix, deprecated
    m.upsertAddress(1, addr(2, '2001:db8:2::1')); // new prefix
    m.upsertAddress(1, addr(2, 'fd00::1', 0x20)); // the only lan IPv6: kept
    m.upsertAddress(1, addr(2, '10.0.0.1', 0x20)); // the only lan IPv4: kept
    assert.deepEqual(addresses(publish(m, opts), 'w'), ['wan 2001:db8:2::1', 'lan 10.0.0.1', 'lan fd00::1']);
  });

  test('a link that is not up publishes nothing; the same address on two links once', () => {
    const m = new ZoneModel();
    m.touchNamespace(1);
    m.upsertLink(1, link(2, 'w', false));
    m.upsertAddress(1, addr(2, '203.0.113.1'));
    assert.deepEqual(addresses(publish(m, opts), 'w'), []);
    m.upsertLink(1, link(2, 'w', true));
    m.upsertLink(1, link(3, 'w', true));
    m.upsertAddress(1, addr(3, '203.0.113.1'));
    m.upsertAddress(1, addr(3, '203.0.113.2'));
    const pub = publish(m, opts);
    assert.deepEqual(addresses(pub, 'w'), ['wan 203.0.113.1', 'wan 203.0.113.2']);
    assert.deepEqual(pub.workloads[0]!.links.map((l) => l.ifindex), [2, 3], 'two links in one namespace: one workload');
  });

  test('a workload publishes at most maxAddresses: the first in class, family and address order', () => {
    const fill = (m: ZoneModel): ZoneModel => {
      m.touchNamespace(1);
      m.upsertLink(1, link(2, 'w'));
      m.upsertAddress(1, addr(2, 'fe80::1'));
      m.upsertAddress(1, addr(2, '10.0.0.1'));
      for (let i = 40; i > 0; i--) m.upsertAddress(1, addr(2, `2001:db8::${i.toString(16)}`, 0x80, 128));
      m.upsertAddress(1, addr(2, '203.0.113.1'));
      return m;
    };
    let pub = publish(fill(new ZoneModel({ maxAddresses: 4 })), opts);
    assert.deepEqual(addresses(pub, 'w'), ['wan 203.0.113.1', 'wan 2001:db8::1', 'wan 2001:db8::2', 'wan 2001:db8::3']);
    assert.equal(pub.workloads[0]!.capped, true);
    // The default is 64: 43 addresses are all published.
    pub = publish(fill(new ZoneModel()), opts);
    assert.equal(addresses(pub, 'w').length, 43);
    assert.equal(pub.workloads[0]!.capped, false);
    // Exactly at the cap is not over it.
    pub = publish(fill(new ZoneModel({ maxAddresses: 43 })), opts);
    assert.equal(pub.workloads[0]!.capped, false);
    pub = publish(fill(new ZoneModel({ maxAddresses: 42 })), opts);
    assert.equal(pub.workloads[0]!.capped, true);
    assert.deepEqual(addresses(pub, 'w').slice(-2), ['wan 2001:db8::28', 'lan 10.0.0.1'], 'the link-local one goes first');
  });

  test('one name in two namespaces is a collision: neither is published, both are reported', () => {
    const m = new ZoneModel();
    for (const nsid of [1, 2]) {
      m.touchNamespace(nsid);
      m.upsertLink(nsid, link(2, 'db'));
      m.upsertAddress(nsid, addr(2, `203.0.113.${nsid}`));
    }
    m.upsertLink(1, link(3, 'web'));
    m.upsertAddress(1, addr(3, '203.0.113.9'));
    let pub = publish(m, opts);
    assert.deepEqual(pub.workloads.map((w) => w.name), ['web']);
    assert.deepEqual(pub.problems.map((p) => [p.kind, p.name, p.where.join(' ')]), [['collision', 'db', '1/ot2 2/ot2']]);
    // One claim goes: the other is published again.
    m.deleteLink(2, 2);
    pub = publish(m, opts);
    assert.deepEqual(pub.workloads.map((w) => w.name), ['db', 'web']);
    assert.deepEqual(addresses(pub, 'db'), ['wan 203.0.113.1']);
    assert.deepEqual(pub.problems, []);
  });

  test('names that are not DNS labels, reserved, or too long under the domain are withheld and reported', () => {
    const m = new ZoneModel();
    m.touchNamespace(1);
    const aliases = ['Web', 'a_b', '-x', 'x-', 'lan', 'wan', 'ns', 'has space', 'x'.repeat(64), 'new\nline', 'ok-1'];
    aliases.forEach((a, i) => {
      m.upsertLink(1, link(10 + i, a));
      m.upsertAddress(1, addr(10 + i, `203.0.113.${10 + i}`));
    });
    const pub = publish(m, opts);
    assert.deepEqual(pub.workloads.map((w) => w.name), ['ok-1']);
    assert.deepEqual(pub.problems.map((p) => `${p.kind}:${p.name}`).sort(), [
      'invalid-name:-x', 'invalid-name:Web', 'invalid-name:a_b', 'invalid-name:has space', 'invalid-name:new\nline',
      `invalid-name:${'x'.repeat(64)}`, 'invalid-name:x-', 'reserved-name:lan', 'reserved-name:ns', 'reserved-name:wan',
    ].sort());
    const long = publish(m, { ...opts, domain: `${'d'.repeat(62)}.${'e'.repeat(62)}.${'f'.repeat(62)}.${'g'.repeat(62)}` });
    assert.ok(long.problems.some((p) => p.name === 'ok-1' && /longer than 253/.test(p.detail)));
  });

  test('sweeps forget what a complete dump did not report and no event touched since it began', () => {
    const m = new ZoneModel();
    m.touchNamespace(1);
    m.upsertLink(1, link(2, 'a'));
    m.upsertLink(1, link(3, 'b'));
    m.upsertAddress(1, addr(2, '203.0.113.1'));
    m.upsertAddress(1, addr(2, '203.0.113.2'));
    const since = m.tick;
    m.upsertLink(1, link(2, 'a')); // dumped
    m.upsertAddress(1, addr(2, '203.0.113.2')); // dumped
    m.upsertAddress(1, addr(2, '203.0.113.3')); // an event during the dump
    assert.equal(m.sweepLinks(1, since), 1);
    assert.equal(m.sweepAddresses(1, since), 1);
    assert.deepEqual(m.snapshot()[0]!.links.map((l) => l.alias), ['a']);
    assert.deepEqual(m.snapshot()[0]!.addresses.map((a) => a.address), ['203.0.113.2', '203.0.113.3']);
    // Namespaces: likewise.
    m.touchNamespace(5);
    const s2 = m.tick;
    m.touchNamespace(1);
    assert.deepEqual(m.sweepNamespaces(s2), [5]);
  });

  test('links and addresses of unknown namespaces are ignored; a dellink takes its addresses', () => {
    const m = new ZoneModel();
    m.upsertLink(9, link(2, 'ghost'));
    assert.equal(m.namespaces.size, 0);
    m.touchNamespace(1);
    m.upsertLink(1, link(2, 'a'));
    m.upsertAddress(1, addr(2, '203.0.113.1'));
    m.deleteLink(1, 2);
    assert.equal(m.namespaces.get(1)!.addressCount(), 0);
  });

  test('the version moves only for changes that can change the file', () => {
    const m = new ZoneModel();
    m.touchNamespace(1);
    m.upsertLink(1, link(1, undefined, true, 'lo'));
    m.upsertLink(1, link(2, 'a'));
    m.upsertAddress(1, addr(2, '203.0.113.1'));
    let v = m.version;
    m.upsertLink(1, link(1, undefined, true, 'lo0'));
    m.upsertLink(1, link(2, 'a'));
    m.upsertAddress(1, addr(2, '203.0.113.1'));
    assert.equal(m.version, v, 'an unnamed link renamed, the same link and address reported again');
    m.upsertLink(1, link(2, 'a', true, 'renamed'));
    assert.notEqual(m.version, v, 'a named link renamed (its name is in a comment)');
    v = m.version;
    m.upsertLink(1, link(2, 'b', true, 'renamed'));
    assert.notEqual(m.version, v, 'an alias change');
  });
});
