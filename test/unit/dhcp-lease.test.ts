import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Lease, LeaseError, leaseFromAck } from '../../src/dhcp/lease.js';
import { decodeMessage, DhcpDecodeError, type DhcpMessage, INFINITE_LEASE, MessageType } from '../../src/dhcp/message.js';
import { prng } from '../helpers/prng.js';
import { HexFixtures } from '../helpers/hex-fixtures.js';

const fixtures = new HexFixtures('dhcp');
const load = (name: string): Buffer => fixtures.load(name);

const ACK = decodeMessage(load('dnsmasq-ack'));

function refused(m: DhcpMessage): LeaseError {
  try {
    leaseFromAck(m);
  } catch (e) {
    if (e instanceof LeaseError) return e;
    throw e;
  }
  assert.fail('accepted');
}

/** The captured ACK with some fields replaced (undefined removes one). */
function ack(changes: Partial<Record<keyof DhcpMessage, unknown>>): DhcpMessage {
  const m: Record<string, unknown> = { ...ACK };
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete m[k];
    else m[k] = v;
  }
  return m as unknown as DhcpMessage;
}

describe('captured replies', () => {
  test("dnsmasq's ACK, OFFER and rapid-commit ACK are leases: /24, its router, DNS servers, domain, its T1/T2", () => {
    const expected: Lease = {
      address: '10.78.0.110',
      prefixLength: 24,
      subnetMask: '255.255.255.0',
      gateway: '10.78.0.1',
      dns: ['10.78.0.53', '10.78.0.54'],
      domain: 'lan.example',
      leaseSeconds: 120,
      renewalSeconds: 60,
      rebindingSeconds: 105,
      serverId: '10.78.0.1',
    };
    assert.deepEqual(leaseFromAck(ACK), expected);
    assert.deepEqual(leaseFromAck(decodeMessage(load('dnsmasq-offer'))), expected);
    const { dns: _d, domain: _n, ...plain } = expected;
    assert.deepEqual(leaseFromAck(decodeMessage(load('dnsmasq-ack-rapid'))), { ...plain, dns: [] });
    assert.deepEqual(leaseFromAck(decodeMessage(load('dnsmasq-offer-overload'))), { ...plain, dns: [], domain: 'lan.example' });
  });

  test('a NAK, a client message: not leases', () => {
    assert.deepEqual([refused(decodeMessage(load('dnsmasq-nak'))).field, refused(decodeMessage(load('dnsmasq-nak'))).rule], ['type', 'message type 6 is neither OFFER (2) nor ACK (5)']);
    assert.equal(refused(decodeMessage(load('udhcpc-request'))).field, 'type');
  });
});

describe('refused', () => {
  test('yiaddr: unspecified, "this network", loopback, link-local, multicast, class E, limited broadcast, and the subnet\'s network and broadcast addresses', () => {
    const cases: Array<[string, RegExp]> = [
      ['0.0.0.0', /unspecified/],
      ['0.1.2.3', /this network/],
      ['127.0.0.1', /loopback/],
      ['169.254.7.7', /link-local/],
      ['224.0.0.1', /multicast/],
      ['239.255.255.250', /multicast/],
      ['240.0.0.1', /class E/],
      ['255.255.255.255', /limited broadcast/],
      ['10.78.0.0', /network address of 10.78.0.0\/24/],
      ['10.78.0.255', /broadcast address of 10.78.0.0\/24/],
      ['10.78.0.1x', /not a dotted-quad/],
    ];
    for (const [yiaddr, rule] of cases) {
      const e = refused(ack({ yiaddr }));
      assert.equal(e.field, 'yiaddr', yiaddr);
      assert.match(e.rule, rule, yiaddr);
    }
    // the same host part is fine under a mask where it is not an edge
    assert.equal(leaseFromAck(ack({ yiaddr: '10.78.0.255', subnetMask: '255.255.254.0' })).prefixLength, 23);
  });

  test('subnet mask: missing, non-contiguous, /0 and /32 refused; /31 (RFC 3021) is two hosts, both usable', () => {
    assert.match(refused(ack({ subnetMask: undefined })).rule, /missing/);
    for (const mask of ['255.0.255.0', '255.255.255.1', '0.255.255.255', '255.255.253.0']) assert.match(refused(ack({ subnetMask: mask })).rule, /not contiguous/, mask);
    assert.match(refused(ack({ subnetMask: '0.0.0.0' })).rule, /\/0/);
    assert.match(refused(ack({ subnetMask: '255.255.255.255' })).rule, /\/32 leaves no on-link neighbour/);
    for (const [yiaddr, router] of [['10.78.0.110', '10.78.0.111'], ['10.78.0.111', '10.78.0.110']]) {
      const l = leaseFromAck(ack({ yiaddr, subnetMask: '255.255.255.254', routers: [router] }));
      assert.deepEqual([l.address, l.prefixLength, l.gateway], [yiaddr, 31, router]);
    }
    assert.equal(leaseFromAck(ack({ subnetMask: '128.0.0.0', routers: ['10.1.2.3'] })).prefixLength, 1);
    assert.equal(leaseFromAck(ack({ subnetMask: '255.255.255.252', yiaddr: '10.78.0.1', routers: ['10.78.0.2'] })).prefixLength, 30);
  });

  test('routers: any outside the subnet refuses the whole offer; so do the offered address itself and the edges; the first is the gateway; none, no gateway', () => {
    const cases: Array<[string[], RegExp]> = [
      [['10.79.0.1'], /10.79.0.1 is outside 10.78.0.0\/24/],
      [['10.78.0.1', '192.168.1.1'], /192.168.1.1 is outside/],
      [['10.78.0.110'], /the offered address itself/],
      [['10.78.0.0'], /network address/],
      [['10.78.0.255'], /broadcast address/],
      [['0.0.0.0'], /unspecified/],
      [['224.0.0.2'], /multicast/],
    ];
    for (const [routers, rule] of cases) {
      const e = refused(ack({ routers }));
      assert.equal(e.field, 'router', routers.join());
      assert.match(e.rule, rule, routers.join());
    }
    assert.equal(leaseFromAck(ack({ routers: ['10.78.0.2', '10.78.0.1'] })).gateway, '10.78.0.2');
    const none = leaseFromAck(ack({ routers: undefined }));
    assert.equal(none.gateway, undefined);
    assert.equal('gateway' in none, false);
  });

  test('DNS servers must be unicast addresses; none is an empty list', () => {
    for (const [dns, rule] of [[['0.0.0.0'], /unspecified/], [['10.78.0.53', '127.0.0.53'], /loopback/], [['224.0.0.251'], /multicast/], [['255.255.255.255'], /broadcast/]] as const) {
      const e = refused(ack({ dns }));
      assert.equal(e.field, 'dns');
      assert.match(e.rule, rule);
    }
    assert.deepEqual(leaseFromAck(ack({ dns: undefined })).dns, []);
    // off-subnet DNS servers are normal (reached through the gateway)
    assert.deepEqual(leaseFromAck(ack({ dns: ['9.9.9.9'] })).dns, ['9.9.9.9']);
  });

  test('server id: required, unicast', () => {
    assert.deepEqual([refused(ack({ serverId: undefined })).field, refused(ack({ serverId: undefined })).rule], ['serverId', 'missing (RFC 2131 Table 3: required in OFFER and ACK)']);
    assert.match(refused(ack({ serverId: '0.0.0.0' })).rule, /unspecified/);
    assert.match(refused(ack({ serverId: '255.255.255.255' })).rule, /broadcast/);
    // a server on another subnet (through a relay) is fine
    assert.equal(leaseFromAck(ack({ serverId: '192.0.2.67' })).serverId, '192.0.2.67');
  });

  test('lease time: required in OFFER and ACK, not 0; 0xffffffff is Infinity with infinite T1/T2', () => {
    assert.match(refused(ack({ leaseSeconds: undefined })).rule, /missing/);
    assert.match(refused(ack({ leaseSeconds: undefined, type: MessageType.OFFER })).rule, /missing/);
    assert.equal(refused(ack({ leaseSeconds: 0 })).field, 'leaseSeconds');
    const inf = leaseFromAck(ack({ leaseSeconds: INFINITE_LEASE, renewalSeconds: undefined, rebindingSeconds: undefined }));
    assert.deepEqual([inf.leaseSeconds, inf.renewalSeconds, inf.rebindingSeconds, inf.timersAdjusted], [Infinity, Infinity, Infinity, undefined]);
    // finite timers under an infinite lease are kept when ordered
    const renewing = leaseFromAck(ack({ leaseSeconds: INFINITE_LEASE, renewalSeconds: 3600, rebindingSeconds: 7200 }));
    assert.deepEqual([renewing.renewalSeconds, renewing.rebindingSeconds], [3600, 7200]);
    const halfInf = leaseFromAck(ack({ leaseSeconds: INFINITE_LEASE, renewalSeconds: 3600, rebindingSeconds: undefined }));
    assert.deepEqual([halfInf.renewalSeconds, halfInf.rebindingSeconds, halfInf.timersAdjusted], [3600, Infinity, undefined]);
    const backwards = leaseFromAck(ack({ leaseSeconds: INFINITE_LEASE, renewalSeconds: INFINITE_LEASE, rebindingSeconds: 7200 }));
    assert.deepEqual([backwards.renewalSeconds, backwards.rebindingSeconds], [Infinity, Infinity]);
    assert.ok(backwards.timersAdjusted);
  });
});

describe('T1 and T2', () => {
  const timers = (leaseSeconds: number, renewalSeconds?: number, rebindingSeconds?: number): [number, number, string | undefined] => {
    const l = leaseFromAck(ack({ leaseSeconds, renewalSeconds, rebindingSeconds }));
    return [l.renewalSeconds, l.rebindingSeconds, l.timersAdjusted];
  };

  test('defaults 0.5 and 0.875 of the lease (RFC 2131 §4.4.5), whole seconds', () => {
    assert.deepEqual(timers(120), [60, 105, undefined]);
    assert.deepEqual(timers(3600), [1800, 3150, undefined]);
    assert.deepEqual(timers(121), [60, 105, undefined]);
    assert.deepEqual(timers(1), [0, 0, undefined]);
  });

  test("the server's when 0 < T1 < T2 < lease, one of them given and the other defaulted", () => {
    assert.deepEqual(timers(120, 30, 90), [30, 90, undefined]);
    assert.deepEqual(timers(120, 30), [30, 105, undefined]);
    assert.deepEqual(timers(120, undefined, 70), [60, 70, undefined]);
  });

  test('otherwise both defaults, and timersAdjusted says what was wrong', () => {
    for (const [t1, t2] of [[90, 90], [100, 90], [60, 120], [60, 200], [0, 90], [200, undefined], [undefined, 50], [INFINITE_LEASE, 90]] as const) {
      const [r1, r2, why] = timers(120, t1, t2);
      assert.deepEqual([r1, r2], [60, 105], `${t1} ${t2}`);
      assert.match(why ?? '', /are not 0 < T1 < T2 < lease: RFC 2131 §4.4.5 defaults 60 and 105 used/, `${t1} ${t2}`);
    }
  });
});

test('fuzz: 5,000 mutated ACKs and OFFERs are a lease that keeps its promises, a LeaseError or a DhcpDecodeError', () => {
  const rand = prng(0x6c656173);
  const pick = (n: number): number => Math.floor(rand() * n);
  const seeds = ['dnsmasq-ack', 'dnsmasq-offer', 'dnsmasq-ack-rapid', 'dnsmasq-offer-overload'].map(load);
  const stats = { leases: 0, refused: 0, undecodable: 0 };
  const u32 = (s: string): number => s.split('.').reduce((n, p) => n * 256 + Number(p), 0);
  for (let i = 0; i < 5000; i++) {
    const b = Buffer.from(seeds[pick(seeds.length)]!);
    // the header addresses and the options' values: where a lease's facts are
    for (let k = 1 + pick(3); k > 0; k--) {
      const at = pick(2) === 0 ? 16 + pick(4) : 240 + pick(b.length - 240);
      b[at] = pick(3) === 0 ? [0, 255, 127, 224, 10, 78, 1][pick(7)]! : b[at]! ^ (1 << pick(8));
    }
    let m: DhcpMessage;
    try {
      m = decodeMessage(b);
    } catch (e) {
      assert.ok(e instanceof DhcpDecodeError, String(e));
      stats.undecodable++;
      continue;
    }
    let l: Lease;
    try {
      l = leaseFromAck(m);
    } catch (e) {
      assert.ok(e instanceof LeaseError, String(e));
      stats.refused++;
      continue;
    }
    stats.leases++;
    const at = `iteration ${i}: ${b.toString('hex')}`;
    assert.ok(l.prefixLength >= 1 && l.prefixLength <= 31, at);
    const mask = (0xffffffff << (32 - l.prefixLength)) >>> 0;
    assert.equal(u32(l.subnetMask), mask, at);
    const net = (u32(l.address) & mask) >>> 0;
    if (l.gateway !== undefined) {
      assert.equal((u32(l.gateway) & mask) >>> 0, net, at);
      assert.notEqual(l.gateway, l.address, at);
    }
    assert.ok(l.leaseSeconds > 0, at);
    const finite = l.leaseSeconds !== Infinity;
    if (l.timersAdjusted === undefined && (m.renewalSeconds !== undefined || m.rebindingSeconds !== undefined)) {
      assert.ok(l.renewalSeconds > 0 && (l.renewalSeconds < l.rebindingSeconds || !finite), at);
      if (finite) assert.ok(l.rebindingSeconds < l.leaseSeconds, at);
    }
  }
  console.log(`lease fuzz: 5000 mutations, ${stats.leases} leases, ${stats.refused} LeaseError, ${stats.undecodable} DhcpDecodeError`);
  assert.ok(stats.leases > 300 && stats.refused > 300, JSON.stringify(stats));
});
