/**
 * The RFC 2131 state machine (src/dhcp/client.ts) on a fake clock, answered with dnsmasq's own
 * captured OFFER, ACK and NAK (test/fixtures/dhcp), their xid and chaddr rewritten to the
 * client's: what it sends (decoded with the codec), when, and what it tells its owner.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DhcpClient, MAX_TIMER_MS, type Clock, type ClientEvents } from '../../src/dhcp/client.js';
import { decodeMessage, MessageType, type DhcpMessage } from '../../src/dhcp/message.js';
import type { Lease } from '../../src/dhcp/lease.js';
import { prng } from '../helpers/prng.js';
import { HexFixtures } from '../helpers/hex-fixtures.js';

const fixtures = new HexFixtures('dhcp');
const load = (name: string): Buffer => fixtures.load(name);

/** A captured server reply, addressed to this client (xid at 4, chaddr at 28), options changed as asked. */
function reply(name: string, xid: number, chaddr: Buffer, opts: { lease?: number; t1?: number; t2?: number } = {}): Buffer {
  const b = Buffer.from(load(name));
  b.writeUInt32BE(xid >>> 0, 4);
  chaddr.copy(b, 28);
  // Walk the options (after the cookie at 236) to rewrite the timers.
  for (let i = 240; i < b.length && b[i] !== 255;) {
    const code = b[i]!;
    if (code === 0) {
      i++;
      continue;
    }
    const len = b[i + 1]!;
    const value = { 51: opts.lease, 58: opts.t1, 59: opts.t2 }[code as 51 | 58 | 59];
    if (value !== undefined && len === 4) b.writeUInt32BE(value, i + 2);
    i += 2 + len;
  }
  return b;
}

class FakeClock implements Clock {
  t = 0;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private next = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    // What Node's setTimeout takes (more fires at once, with a warning).
    assert.ok(ms >= 0 && ms <= MAX_TIMER_MS, `setTimeout(${ms})`);
    const id = this.next++;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== h);
  }
  /** Runs every timer due up to t + ms, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const first = this.timers[0];
      if (first === undefined || first.at > end) break;
      this.timers.shift();
      this.t = first.at;
      first.fn();
    }
    this.t = end;
  }
  get pending(): number {
    return this.timers.length;
  }
}

interface Sent {
  at: number;
  to: string;
  m: DhcpMessage;
}

const CHADDR = Buffer.from([0x02, 0x00, 0x00, 0x78, 0x00, 0x02]);
const CLIENT_ID = Buffer.from('ff0000000100040102030405060708090a0b0c0d0e0f10', 'hex');

function setup(seed = 1) {
  const clock = new FakeClock();
  const sent: Sent[] = [];
  const seen: string[] = [];
  const leases: Lease[] = [];
  const events: ClientEvents = {
    bound: (l) => {
      seen.push(`bound ${l.address}`);
      leases.push(l);
    },
    renewed: (l) => seen.push(`renewed ${l.address}`),
    lost: (why, l) => seen.push(`lost ${why} ${l.address}`),
    dropped: (d) => seen.push(`dropped ${d.reason}`),
    offered: (s) => seen.push(`offered ${s}`),
  };
  const client = new DhcpClient({ chaddr: CHADDR, clientId: CLIENT_ID, hostname: 'web', random: prng(seed) },
    { send: (p, to) => sent.push({ at: clock.t, to, m: decodeMessage(p) }) }, events, clock);
  return { clock, sent, seen, leases, client, last: () => sent[sent.length - 1]! };
}

describe('DhcpClient', () => {
  test('DISCOVER, OFFER, REQUEST, ACK: bound, with what every message must carry', () => {
    const { client, sent, seen, last } = setup();
    client.start();
    const discover = last();
    assert.equal(discover.m.type, MessageType.DISCOVER);
    assert.equal(discover.to, 'broadcast');
    assert.equal(discover.m.broadcast, true, 'the broadcast flag: an ipvlan device cannot receive a unicast offer');
    assert.deepEqual(discover.m.clientId, CLIENT_ID);
    assert.equal(discover.m.hostname, 'web');
    assert.equal(discover.m.rapidCommit, true);
    client.receive(reply('dnsmasq-offer', discover.m.xid, CHADDR));
    const request = last();
    assert.equal(request.m.type, MessageType.REQUEST);
    assert.equal(request.m.xid, discover.m.xid, 'the same xid (RFC 2131 §4.4.1)');
    assert.equal(request.m.requestedAddress, '10.78.0.110');
    assert.equal(request.m.serverId, '10.78.0.1');
    assert.equal(request.m.ciaddr, '0.0.0.0');
    assert.equal(request.m.broadcast, true);
    client.receive(reply('dnsmasq-ack', discover.m.xid, CHADDR));
    assert.deepEqual(seen, ['offered 10.78.0.1', 'bound 10.78.0.110']);
    assert.equal(client.current, 'bound');
    assert.equal(client.bound?.gateway, '10.78.0.1');
    assert.equal(sent.length, 2);
  });

  test('replies for another xid or another hardware address are dropped (other devices on one MAC)', () => {
    const { client, seen, last, sent } = setup();
    client.start();
    const xid = last().m.xid;
    client.receive(reply('dnsmasq-offer', xid + 1, CHADDR));
    client.receive(reply('dnsmasq-offer', xid, Buffer.from([2, 0, 0, 0, 0, 9])));
    assert.deepEqual(seen, ['dropped not-ours', 'dropped not-ours']);
    assert.equal(client.current, 'selecting');
    assert.equal(sent.length, 1);
    client.receive(Buffer.from('not dhcp at all'));
    assert.deepEqual(seen.slice(2), ['dropped undecodable']);
  });

  test('DISCOVER retransmitted with backoff (2 s, 4 s, 8 s ... each within the jitter)', () => {
    const { client, clock, sent } = setup();
    client.start();
    clock.advance(40_000);
    const gaps = sent.slice(1).map((s, i) => s.at - sent[i]!.at);
    assert.ok(gaps.length >= 3, `${sent.length} sent`);
    for (const [i, g] of gaps.entries()) {
      const nominal = 2000 * 2 ** i;
      assert.ok(Math.abs(g - nominal) <= Math.min(1000, nominal / 4), `gap ${i}: ${g} ms, nominal ${nominal}`);
    }
    assert.ok(sent.every((s) => s.m.type === MessageType.DISCOVER && s.m.xid === sent[0]!.m.xid));
    assert.ok(sent.at(-1)!.m.secs >= 10, 'secs counts from the first DISCOVER');
  });

  test('rapid commit: an ACK answering the DISCOVER binds at once', () => {
    const { client, seen, last } = setup();
    client.start();
    client.receive(reply('dnsmasq-ack-rapid', last().m.xid, CHADDR));
    assert.deepEqual(seen, ['bound 10.78.0.110']);
    assert.equal(client.current, 'bound');
  });

  test('RENEWING at T1 (unicast to the server), REBINDING at T2 (broadcast), lost at the end, then DISCOVER', () => {
    const { client, clock, seen, last } = setup();
    client.start();
    const xid = last().m.xid;
    client.receive(reply('dnsmasq-offer', xid, CHADDR, { lease: 120, t1: 60, t2: 105 }));
    client.receive(reply('dnsmasq-ack', xid, CHADDR, { lease: 120, t1: 60, t2: 105 }));
    clock.advance(59_999);
    assert.equal(client.current, 'bound');
    clock.advance(1);
    const renew = last();
    assert.equal(client.current, 'renewing');
    assert.equal(renew.m.type, MessageType.REQUEST);
    assert.equal(renew.to, '10.78.0.1', 'RENEWING is unicast to the server');
    assert.equal(renew.m.ciaddr, '10.78.0.110');
    assert.equal(renew.m.requestedAddress, undefined, 'no option 50 in RENEWING (RFC 2131 table 5)');
    assert.equal(renew.m.serverId, undefined);
    clock.advance(45_000);
    assert.equal(client.current, 'rebinding');
    assert.equal(last().to, 'broadcast');
    assert.equal(last().m.ciaddr, '10.78.0.110');
    clock.advance(15_000);
    assert.deepEqual(seen.slice(-1), ['lost expired 10.78.0.110']);
    assert.equal(client.current, 'selecting');
    assert.equal(last().m.type, MessageType.DISCOVER);
    assert.equal(last().m.requestedAddress, undefined, 'the lost address is not asked for again');
  });

  test('an ACK in RENEWING extends the lease (renewed, counted from the REQUEST)', () => {
    const { client, clock, seen, last } = setup();
    client.start();
    const xid = last().m.xid;
    client.receive(reply('dnsmasq-offer', xid, CHADDR, { lease: 120, t1: 60, t2: 105 }));
    client.receive(reply('dnsmasq-ack', xid, CHADDR, { lease: 120, t1: 60, t2: 105 }));
    clock.advance(60_000);
    const renewAt = clock.t;
    client.receive(reply('dnsmasq-ack', last().m.xid, CHADDR, { lease: 120, t1: 60, t2: 105 }));
    assert.deepEqual(seen.slice(-1), ['renewed 10.78.0.110']);
    assert.equal(client.current, 'bound');
    assert.equal(client.expiresAt, renewAt + 120_000);
  });

  test('a NAK while renewing: lost, and DISCOVER again at once', () => {
    const { client, clock, seen, last } = setup();
    client.start();
    const xid = last().m.xid;
    client.receive(reply('dnsmasq-offer', xid, CHADDR));
    client.receive(reply('dnsmasq-ack', xid, CHADDR));
    clock.advance(60_000);
    client.receive(reply('dnsmasq-nak', last().m.xid, CHADDR));
    assert.deepEqual(seen.slice(-1), ['lost nak 10.78.0.110']);
    assert.equal(last().m.type, MessageType.DISCOVER);
  });

  test('release(): DHCPRELEASE with the address and the server, then nothing more', () => {
    const { client, clock, last, sent } = setup();
    client.start();
    const xid = last().m.xid;
    client.receive(reply('dnsmasq-offer', xid, CHADDR));
    client.receive(reply('dnsmasq-ack', xid, CHADDR));
    client.release();
    assert.equal(last().m.type, MessageType.RELEASE);
    assert.equal(last().m.ciaddr, '10.78.0.110');
    assert.equal(last().m.serverId, '10.78.0.1');
    const n = sent.length;
    clock.advance(1_000_000);
    assert.equal(sent.length, n, 'stopped: no renewal');
    assert.equal(clock.pending, 0, 'no timer left');
  });

  test('release() before an address: nothing sent, no timer left', () => {
    const { client, clock, sent } = setup();
    client.start();
    client.release();
    assert.equal(sent.length, 1);
    assert.equal(clock.pending, 0);
  });

  test('decline(): DHCPDECLINE, then DISCOVER again after 10 s', () => {
    const { client, clock, last } = setup();
    client.start();
    const xid = last().m.xid;
    client.receive(reply('dnsmasq-offer', xid, CHADDR));
    client.receive(reply('dnsmasq-ack', xid, CHADDR));
    client.decline('address in use');
    assert.equal(last().m.type, MessageType.DECLINE);
    assert.equal(last().m.requestedAddress, '10.78.0.110');
    clock.advance(9_999);
    assert.equal(last().m.type, MessageType.DECLINE);
    clock.advance(1);
    assert.equal(last().m.type, MessageType.DISCOVER);
  });

  test('a server granting 1 s leases cannot make the client send more than a few messages a second', () => {
    const { client, clock, sent, last } = setup();
    client.start();
    for (let i = 0; i < 200; i++) {
      const m = last().m;
      // Answer whatever it asked, at once.
      if (m.type === MessageType.DISCOVER) client.receive(reply('dnsmasq-offer', m.xid, CHADDR, { lease: 1, t1: 0, t2: 0 }));
      else if (m.type === MessageType.REQUEST) client.receive(reply('dnsmasq-ack', m.xid, CHADDR, { lease: 1, t1: 0, t2: 0 }));
      clock.advance(100);
    }
    const perSecond = sent.length / (clock.t / 1000);
    assert.ok(perSecond <= 5, `${sent.length} messages in ${clock.t} ms`);
  });

  test('a lease of 60 days: no timer past what setTimeout takes, and the renewal comes at T1, 30 days on', () => {
    const { client, clock, sent, last } = setup();
    client.start();
    const xid = last().m.xid;
    const days = (n: number): number => n * 86400;
    client.receive(reply('dnsmasq-offer', xid, CHADDR, { lease: days(60), t1: days(30), t2: days(52) }));
    client.receive(reply('dnsmasq-ack', xid, CHADDR, { lease: days(60), t1: days(30), t2: days(52) }));
    const n = sent.length;
    clock.advance(days(30) * 1000 - 1);
    assert.equal(sent.length, n, 'nothing before T1');
    clock.advance(1);
    assert.equal(sent.length, n + 1);
    assert.equal(last().m.type, MessageType.REQUEST);
    assert.equal(client.current, 'renewing');
  });

  test('a server answering every DISCOVER with an OFFER and every REQUEST with a NAK: the client backs off', () => {
    const { client, clock, sent, last } = setup();
    client.start();
    let answered = 0;
    for (let t = 0; t < 120_000; t += 50) {
      const m = last().m;
      if (sent.length > answered) {
        answered = sent.length;
        if (m.type === MessageType.DISCOVER) client.receive(reply('dnsmasq-offer', m.xid, CHADDR));
        else if (m.type === MessageType.REQUEST) client.receive(reply('dnsmasq-nak', m.xid, CHADDR));
      }
      clock.advance(50);
    }
    // 3, 6, 12, 24, 48 s waits: about six rounds of two messages in two minutes.
    assert.ok(sent.length <= 16, `${sent.length} messages in 120 s`);
    assert.ok(sent.length >= 8, `${sent.length} messages: it still tries`);
  });
});
