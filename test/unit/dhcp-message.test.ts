import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type ClientMessage,
  decodeMessage,
  DhcpDecodeError,
  DhcpEncodeError,
  type DhcpMessage,
  encodeClientMessage,
  escapeText,
  MessageType,
  Option,
} from '../../src/dhcp/message.js';
import { prng } from '../helpers/prng.js';
import { HexFixtures } from '../helpers/hex-fixtures.js';

const fixtures = new HexFixtures('dhcp');
const text = (name: string): string => fixtures.text(name);
const load = (name: string): Buffer => fixtures.load(name);
const FIXTURE_NAMES = fixtures.names();

const MAC = Buffer.from('020000780002', 'hex');
const CLIENT_ID_MAC = Buffer.concat([Buffer.from([1]), MAC]);
const PRL_UDHCPC = [1, 3, 6, 12, 15, 28, 42];

function refusal(b: Uint8Array): DhcpDecodeError {
  try {
    decodeMessage(b);
  } catch (e) {
    if (e instanceof DhcpDecodeError) return e;
    throw e;
  }
  assert.fail('decoded without an error');
}

function encodeRefusal(m: ClientMessage): DhcpEncodeError {
  try {
    encodeClientMessage(m);
  } catch (e) {
    if (e instanceof DhcpEncodeError) return e;
    throw e;
  }
  assert.fail('encoded without an error');
}

/** The fixed fields (and cookie) of `base` with `options` after them, zero-padded to `pad`. */
function withOptions(base: Buffer, options: number[], pad = 0): Buffer {
  const out = Buffer.concat([base.subarray(0, 240), Buffer.from(options)]);
  return out.length >= pad ? out : Buffer.concat([out, Buffer.alloc(pad - out.length)]);
}
const OFFER = load('dnsmasq-offer');
/** An OFFER's mandatory options, then `more`, then END. */
const offerWith = (...more: number[]): Buffer => withOptions(OFFER, [53, 1, 2, 54, 4, 10, 78, 0, 1, ...more, 255]);

// ---------------------------------------------------------------------------------------------
// What tcpdump made of each capture (the fixture's # lines): an independent reading to hold ours to.

interface TcpdumpReading {
  xid: number;
  broadcast: boolean;
  addrs: Record<'ciaddr' | 'yiaddr' | 'siaddr' | 'giaddr', string>;
  chaddr: string;
  type: string;
  /** code -> [length, value text] in the order tcpdump listed them; the PRL's codes as value. */
  options: Map<number, [number, string]>;
}

function tcpdumpReading(name: string): TcpdumpReading {
  const lines = text(name)
    .split('\n')
    .filter((l) => l.startsWith('#   '))
    .map((l) => l.slice(4));
  const all = lines.join('\n');
  const r: TcpdumpReading = {
    xid: parseInt(/xid 0x([0-9a-f]+)/.exec(all)![1]!, 16),
    broadcast: /Flags \[Broadcast\]/.test(all),
    addrs: { ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0' },
    chaddr: /Client-Ethernet-Address (\S+)/.exec(all)![1]!,
    type: '',
    options: new Map(),
  };
  for (const [label, key] of [['Client-IP', 'ciaddr'], ['Your-IP', 'yiaddr'], ['Server-IP', 'siaddr'], ['Gateway-IP', 'giaddr']] as const) {
    const m = new RegExp(`${label} (\\S+)`).exec(all);
    if (m) r.addrs[key] = m[1]!;
  }
  let prl: number | undefined;
  for (const line of lines) {
    const m = /^[\w-]+ \((\d+)\), length (\d+)(?::\s*(.*)|"")?$/.exec(line);
    if (m) {
      const code = Number(m[1]);
      r.options.set(code, [Number(m[2]), m[3] ?? '']);
      prl = code === Option.PARAMETER_REQUEST ? code : undefined;
      if (code === Option.MESSAGE_TYPE) r.type = m[3]!;
    } else if (prl !== undefined) {
      const entry = r.options.get(prl)!;
      const codes = [...line.matchAll(/\((\d+)\)/g)].map((x) => x[1]!);
      entry[1] = [entry[1], ...codes].filter((x) => x !== '').join(',');
    }
  }
  return r;
}

const TCPDUMP_TYPES: Record<string, number> = { Discover: 1, Offer: 2, Request: 3, Decline: 4, ACK: 5, NACK: 6, Release: 7, Inform: 8 };
/** Options tcpdump 4.99 does not show: it does not read option overload's file and sname. */
const UNSEEN_BY_TCPDUMP: Record<string, number[]> = { 'dnsmasq-offer-overload': [224] };

describe('captured fixtures', () => {
  test('every capture decodes to what tcpdump -vv read in it: header, every option and its length, and the values tcpdump prints', () => {
    assert.equal(FIXTURE_NAMES.length, 12);
    for (const name of FIXTURE_NAMES) {
      const m = decodeMessage(load(name));
      const t = tcpdumpReading(name);
      const at = `${name}`;
      assert.equal(m.xid, t.xid, at);
      assert.equal(m.broadcast, t.broadcast, at);
      assert.deepEqual({ ciaddr: m.ciaddr, yiaddr: m.yiaddr, siaddr: m.siaddr, giaddr: m.giaddr }, t.addrs, at);
      assert.equal([...m.chaddr].map((x) => x.toString(16).padStart(2, '0')).join(':'), t.chaddr, at);
      assert.equal(m.type, TCPDUMP_TYPES[t.type], at);
      assert.equal(m.op, m.type === 2 || m.type === 5 || m.type === 6 ? 2 : 1, at);
      assert.deepEqual([...m.options.keys()].sort((a, b) => a - b), [...t.options.keys(), ...(UNSEEN_BY_TCPDUMP[name] ?? [])].sort((a, b) => a - b), at);
      for (const [code, [length, value]] of t.options) {
        const raw = m.options.get(code)!;
        const where = `${name} option ${code}`;
        assert.equal(raw.length, length, where);
        const addresses = value.split(',');
        switch (code) {
          case Option.SUBNET_MASK:
            assert.equal(m.subnetMask, value, where);
            break;
          case Option.ROUTER:
            assert.deepEqual(m.routers, addresses, where);
            break;
          case Option.DNS:
            assert.deepEqual(m.dns, addresses, where);
            break;
          case Option.BROADCAST:
            assert.equal([...raw].join('.'), value, where);
            break;
          case Option.SERVER_ID:
            assert.equal(m.serverId, value, where);
            break;
          case Option.REQUESTED_ADDRESS:
            assert.equal(m.requestedAddress, value, where);
            break;
          case Option.LEASE_TIME:
            assert.equal(m.leaseSeconds, Number(value), where);
            break;
          case Option.RENEWAL_TIME:
            assert.equal(m.renewalSeconds, Number(value), where);
            break;
          case Option.REBINDING_TIME:
            assert.equal(m.rebindingSeconds, Number(value), where);
            break;
          case Option.MAX_SIZE:
            assert.equal(m.maxMessageSize, Number(value), where);
            break;
          case Option.HOSTNAME:
            assert.equal(JSON.stringify(m.hostname), value, where);
            break;
          case Option.DOMAIN:
            assert.equal(JSON.stringify(m.domain), value, where);
            break;
          case Option.MESSAGE:
            assert.equal(JSON.stringify(m.message), value, where);
            break;
          case 60: // vendor class: no typed view
            assert.equal(JSON.stringify(raw.toString('latin1')), value, where);
            break;
          case Option.PARAMETER_REQUEST:
            assert.deepEqual(m.parameterRequest, value.split(',').map(Number), where);
            break;
          case Option.RAPID_COMMIT:
            assert.equal(m.rapidCommit, true, where);
            break;
          case Option.OVERLOAD:
            assert.equal(raw[0], { file: 1, sname: 2 }[value], where);
            break;
          case Option.CLIENT_ID: {
            const ether = /^ether (\S+)$/.exec(value);
            const typed = /^hardware-type (\d+), (\S+)$/.exec(value);
            const expected = ether
              ? Buffer.from('01' + ether[1]!.replaceAll(':', ''), 'hex')
              : Buffer.concat([Buffer.from([Number(typed![1])]), Buffer.from(typed![2]!.replaceAll(':', ''), 'hex')]);
            assert.deepEqual(m.clientId, expected, where);
            break;
          }
        }
      }
    }
  });

  test("udhcpc's DISCOVER, dnsmasq's OFFER, udhcpc's REQUEST and dnsmasq's ACK are one exchange: one xid, the offered address requested from that server", () => {
    const d = decodeMessage(load('udhcpc-discover'));
    const o = decodeMessage(load('dnsmasq-offer'));
    const r = decodeMessage(load('udhcpc-request'));
    const a = decodeMessage(load('dnsmasq-ack'));
    assert.deepEqual([d.type, o.type, r.type, a.type], [MessageType.DISCOVER, MessageType.OFFER, MessageType.REQUEST, MessageType.ACK]);
    assert.equal(new Set([d.xid, o.xid, r.xid, a.xid]).size, 1);
    assert.equal(d.xid, 0x0bea7451);
    assert.deepEqual(d.chaddr, MAC);
    assert.deepEqual(o.chaddr, MAC);
    assert.deepEqual(d.clientId, CLIENT_ID_MAC);
    assert.equal(d.hostname, 'foo');
    assert.deepEqual(d.parameterRequest, PRL_UDHCPC);
    assert.equal(d.maxMessageSize, 576);
    assert.equal(d.options.get(60)?.toString(), 'udhcp 1.35.0');
    assert.equal(o.yiaddr, '10.78.0.110');
    assert.equal(r.requestedAddress, o.yiaddr);
    assert.equal(r.serverId, o.serverId);
    assert.equal(r.ciaddr, '0.0.0.0'); // SELECTING
    assert.equal(o.serverId, '10.78.0.1');
    assert.deepEqual(o.dns, ['10.78.0.53', '10.78.0.54']);
    assert.equal(o.domain, 'lan.example');
    assert.equal(o.hostname, undefined);
    assert.equal(a.hostname, 'foo'); // dnsmasq names the client in its ACK, not in its OFFER
    assert.deepEqual([a.leaseSeconds, a.renewalSeconds, a.rebindingSeconds], [120, 60, 105]);
  });

  test("udhcpc's RELEASE: ciaddr is the lease, the server id its server, no requested address", () => {
    const m = decodeMessage(load('udhcpc-release'));
    assert.equal(m.type, MessageType.RELEASE);
    assert.equal(m.ciaddr, '10.78.0.110');
    assert.equal(m.serverId, '10.78.0.1');
    assert.equal(m.requestedAddress, undefined);
    assert.deepEqual([...m.options.keys()], [Option.MESSAGE_TYPE, Option.SERVER_ID, Option.CLIENT_ID]);
  });

  test('an RFC 4361 client id (type 255, IAID, DUID-UUID) sent by udhcpc; dnsmasq 2.90 does not echo it (RFC 6842) in its OFFER', () => {
    const d = decodeMessage(load('udhcpc-discover-clientid'));
    assert.equal(d.clientId?.toString('hex'), 'ff' + '00000001' + '0004' + '00112233445566778899aabbccddeeff');
    const o = decodeMessage(load('dnsmasq-offer-clientid'));
    assert.equal(o.xid, d.xid);
    assert.equal(o.clientId, undefined);
    assert.equal(o.options.has(Option.CLIENT_ID), false);
  });

  test('rapid commit: an empty option 80 in the DISCOVER, and dnsmasq answers it with an ACK carrying option 80', () => {
    const d = decodeMessage(load('python-discover-rapid'));
    assert.equal(d.type, MessageType.DISCOVER);
    assert.equal(d.rapidCommit, true);
    assert.equal(d.options.get(Option.RAPID_COMMIT)?.length, 0);
    const a = decodeMessage(load('dnsmasq-ack-rapid'));
    assert.equal(a.type, MessageType.ACK);
    assert.equal(a.xid, d.xid);
    assert.equal(a.rapidCommit, true);
    assert.equal(a.broadcast, true);
    assert.equal(a.yiaddr, '10.78.0.110');
    assert.equal(decodeMessage(load('dnsmasq-ack')).rapidCommit, undefined);
  });

  test("dnsmasq's NAK of an INIT-REBOOT request for another network: no address, the reason in option 56", () => {
    const r = decodeMessage(load('python-request-initreboot'));
    assert.equal(r.requestedAddress, '10.99.0.5');
    assert.equal(r.serverId, undefined);
    const n = decodeMessage(load('dnsmasq-nak'));
    assert.equal(n.type, MessageType.NAK);
    assert.equal(n.xid, r.xid);
    assert.equal(n.yiaddr, '0.0.0.0');
    assert.equal(n.serverId, '10.78.0.1');
    assert.equal(n.message, 'wrong network');
    assert.equal(n.leaseSeconds, undefined);
  });

  test("option overload: dnsmasq put option 224 into the file field (option 52 = 1); it is read only because option 52 says so", () => {
    const b = load('dnsmasq-offer-overload');
    const m = decodeMessage(b);
    assert.equal(m.options.get(Option.OVERLOAD)?.[0], 1);
    assert.equal(m.options.get(224)?.toString(), 'a'.repeat(120));
    assert.equal(m.options.get(225)?.toString(), 'b'.repeat(100));
    assert.equal(m.options.get(226)?.toString(), 'c'.repeat(60));
    assert.equal(m.domain, 'lan.example');
    // the same packet with option 52 turned into PADs: the file field is a file name again
    const at = b.indexOf(Buffer.from([0x34, 0x01, 0x01]), 240);
    assert.ok(at > 240);
    const plain = Buffer.from(b);
    plain.fill(0, at, at + 3);
    const p = decodeMessage(plain);
    assert.equal(p.options.has(224), false);
    assert.equal(p.options.has(Option.OVERLOAD), false);
    assert.equal(p.domain, 'lan.example');
  });
});

describe('decoder rules', () => {
  test('short packets: fewer than 240 octets (fixed fields and cookie) are refused, at every length', () => {
    for (let n = 0; n < 240; n++) {
      const e = refusal(OFFER.subarray(0, n));
      assert.equal(e.field, 'length');
    }
    // 240 octets: the cookie and nothing after it, so no message type
    assert.equal(refusal(OFFER.subarray(0, 240)).field, 'option 53 (message type)');
  });

  test('the magic cookie, op and hlen', () => {
    const b = Buffer.from(OFFER);
    b[239] = 0x62;
    const e = refusal(b);
    assert.deepEqual([e.field, e.offset], ['cookie', 236]);
    assert.match(e.rule, /0x63825362/);
    for (const op of [0, 3, 255]) {
      const c = Buffer.from(OFFER);
      c[0] = op;
      assert.equal(refusal(c).field, 'op');
    }
    const wrongSide = Buffer.from(OFFER);
    wrongSide[0] = 1; // an OFFER in a BOOTREQUEST
    assert.match(refusal(wrongSide).rule, /BOOTREQUEST with message type 2/);
    const discover = Buffer.from(load('udhcpc-discover'));
    discover[0] = 2;
    assert.equal(refusal(discover).field, 'op');
    const h = Buffer.from(OFFER);
    h[2] = 17;
    assert.deepEqual([refusal(h).field, refusal(h).offset], ['hlen', 2]);
    h[2] = 16;
    assert.equal(decodeMessage(h).chaddr.length, 16);
    h[2] = 0;
    assert.equal(decodeMessage(h).chaddr.length, 0);
  });

  test('option lengths past the end of the packet, and a length octet cut off', () => {
    const ok = offerWith(51, 4, 0, 0, 0, 120);
    assert.equal(decodeMessage(ok).leaseSeconds, 120);
    const over = withOptions(OFFER, [53, 1, 2, 51, 5, 0, 0, 0, 120]);
    const e = refusal(over);
    assert.equal(e.field, 'option 51 (lease time)');
    assert.match(e.rule, /length 5 runs 1 octet past the end of the options field/);
    assert.equal(e.offset, 244);
    const cut = withOptions(OFFER, [53, 1, 2, 51]);
    assert.match(refusal(cut).rule, /length octet cut off/);
    // every truncation of a real OFFER inside its options is refused or decodes a prefix of it, never more
    const full = decodeMessage(OFFER);
    for (let n = 240; n < OFFER.length; n++) {
      try {
        const m = decodeMessage(OFFER.subarray(0, n));
        for (const [code, v] of m.options) assert.deepEqual(v, full.options.get(code), `cut at ${n}, option ${code}`);
      } catch (err) {
        assert.ok(err instanceof DhcpDecodeError, String(err));
      }
    }
  });

  test('END: a missing END is tolerated where the data ends at an option boundary; after END everything is padding', () => {
    const noEnd = withOptions(OFFER, [53, 1, 2, 54, 4, 10, 78, 0, 1, 51, 4, 0, 0, 0, 120]);
    const m = decodeMessage(noEnd);
    assert.deepEqual([m.type, m.serverId, m.leaseSeconds], [2, '10.78.0.1', 120]);
    // dnsmasq's own OFFER without its final END octet
    assert.equal(OFFER[OFFER.length - 1], 255);
    assert.deepEqual(decodeMessage(OFFER.subarray(0, OFFER.length - 1)).options, decodeMessage(OFFER).options);
    // what follows END is not read: not even as a second message type
    const after = withOptions(OFFER, [53, 1, 2, 255, 53, 1, 5, 51, 200]);
    assert.equal(decodeMessage(after).type, MessageType.OFFER);
    assert.equal(decodeMessage(after).options.has(Option.LEASE_TIME), false);
    // PADs anywhere
    assert.equal(decodeMessage(withOptions(OFFER, [0, 0, 53, 1, 2, 0, 255])).type, 2);
  });

  test('message type: required, one octet, 1-8', () => {
    assert.match(refusal(withOptions(OFFER, [54, 4, 10, 78, 0, 1, 255])).rule, /missing/);
    assert.match(refusal(withOptions(OFFER, [53, 2, 2, 2, 255])).rule, /must be 1 octet, is 2/);
    assert.match(refusal(withOptions(OFFER, [53, 0, 255])).rule, /must be 1 octet, is 0/);
    for (const t of [0, 9, 255]) assert.match(refusal(withOptions(OFFER, [53, 1, t, 255])).rule, /not a message type/);
    // RFC 3396: two instances concatenate, so a repeated type is a two-octet one
    assert.equal(refusal(withOptions(OFFER, [53, 1, 2, 53, 1, 2, 255])).field, 'option 53 (message type)');
  });

  test('typed options of the wrong length are refused naming the option', () => {
    const cases: Array<[number[], string, RegExp]> = [
      [[1, 3, 255, 255, 255], 'option 1 (subnet mask)', /must be 4 octets, is 3/],
      [[3, 5, 10, 78, 0, 1, 9], 'option 3 (router)', /multiple of 4 octets, is 5/],
      [[3, 0], 'option 3 (router)', /non-zero multiple of 4 octets, is 0/],
      [[6, 6, 1, 1, 1, 1, 2, 2], 'option 6 (DNS servers)', /is 6/],
      [[50, 5, 1, 2, 3, 4, 5], 'option 50 (requested address)', /must be 4 octets, is 5/],
      [[51, 3, 0, 0, 120], 'option 51 (lease time)', /must be 4 octets, is 3/],
      [[51, 8, 0, 0, 0, 120, 0, 0, 0, 120], 'option 51 (lease time)', /must be 4 octets, is 8/],
      [[58, 2, 0, 60], 'option 58 (renewal time)', /is 2/],
      [[59, 0], 'option 59 (rebinding time)', /is 0/],
      [[61, 1, 1], 'option 61 (client identifier)', /at least 2 octets/],
      [[80, 1, 0], 'option 80 (rapid commit)', /must be 0 octets, is 1/],
      [[57, 1, 2], 'option 57 (maximum message size)', /must be 2 octets/],
      [[57, 2, 2, 63], 'option 57 (maximum message size)', /575 is below 576/],
      [[55, 0], 'option 55 (parameter request list)', /empty/],
      [[52, 2, 1, 1], 'option 52 (option overload)', /must be 1 octet, is 2/],
    ];
    for (const [opt, field, rule] of cases) {
      const e = refusal(offerWith(...opt));
      assert.equal(e.field, field, JSON.stringify(opt));
      assert.match(e.rule, rule, JSON.stringify(opt));
    }
    // a server id of the right length but said twice (RFC 3396): 8 octets, refused too
    assert.equal(refusal(withOptions(OFFER, [53, 1, 2, 54, 4, 10, 78, 0, 1, 54, 4, 10, 78, 0, 1, 255])).field, 'option 54 (server identifier)');
  });

  test('RFC 3396: instances of one option concatenate in order, even splitting an address', () => {
    const m = decodeMessage(offerWith(6, 4, 10, 78, 0, 53, 3, 4, 10, 78, 0, 1, 6, 2, 10, 78, 6, 2, 0, 54));
    assert.deepEqual(m.dns, ['10.78.0.53', '10.78.0.54']);
    assert.deepEqual(m.routers, ['10.78.0.1']);
    assert.equal(m.options.get(Option.DNS)?.length, 8);
  });

  test('overload: file and sname are read as options only when option 52 says so, options first, then file, then sname (RFC 3396 §7)', () => {
    const base = Buffer.from(offerWith(52, 1, 3, 15, 3, ...Buffer.from('lan')));
    const file = Buffer.from([15, 4, ...Buffer.from('.exa'), 255]);
    const sname = Buffer.from([15, 4, ...Buffer.from('mple'), 255]);
    file.copy(base, 108);
    sname.copy(base, 44);
    assert.equal(decodeMessage(base).domain, 'lan.example');
    const only = (v: number): DhcpMessage => {
      const c = Buffer.from(base);
      c[c.indexOf(Buffer.from([52, 1, 3]), 240) + 2] = v;
      return decodeMessage(c);
    };
    assert.equal(only(1).domain, 'lan.exa');
    assert.equal(only(2).domain, 'lanmple');
    // a field that fills up without END is tolerated like the options field
    const full = Buffer.from(offerWith(52, 1, 2));
    Buffer.from([224, 62, ...Buffer.alloc(62, 0x78)]).copy(full, 44);
    assert.equal(decodeMessage(full).options.get(224)?.length, 62);
  });

  test('overload: bad values, an option running out of file or sname, and option 52 outside the options field are refused', () => {
    for (const v of [0, 4, 255]) assert.match(refusal(offerWith(52, 1, v)).rule, /must be 1 \(file\), 2 \(sname\) or 3 \(both\)/);
    assert.match(refusal(offerWith(52, 0)).rule, /must be 1 octet, is 0/);
    const overrun = Buffer.from(offerWith(52, 1, 1));
    Buffer.from([224, 200]).copy(overrun, 108); // 200 octets claimed in a 128-octet field: refused, though the packet is longer
    const e = refusal(overrun);
    assert.equal(e.field, 'option 224');
    assert.match(e.rule, /past the end of the file field/);
    const snameOverrun = Buffer.from(offerWith(52, 1, 2));
    Buffer.from([12, 63]).copy(snameOverrun, 44); // 2 + 63 > 64
    assert.match(refusal(snameOverrun).rule, /1 octet past the end of the sname field/);
    const nested = Buffer.from(offerWith(52, 1, 1));
    Buffer.from([52, 1, 2, 255]).copy(nested, 108);
    assert.match(refusal(nested).rule, /found in the file field/);
    // without option 52, junk in file and sname is a boot file name, not read
    const junk = Buffer.from(OFFER);
    junk.fill(0x34, 44, 236);
    assert.deepEqual(decodeMessage(junk).options, decodeMessage(OFFER).options);
  });

  test('host and domain names must be DNS names (they become configuration); trailing NULs dropped', () => {
    const name = (code: number, s: string | number[]): Buffer => {
      const v = typeof s === 'string' ? [...Buffer.from(s, 'latin1')] : s;
      return offerWith(code, v.length, ...v);
    };
    assert.equal(decodeMessage(name(12, 'web-1_x')).hostname, 'web-1_x');
    assert.equal(decodeMessage(name(15, 'lan.example.')).domain, 'lan.example.');
    assert.equal(decodeMessage(name(15, [...Buffer.from('lan.example'), 0, 0])).domain, 'lan.example');
    const refused: Array<[number, string | number[], RegExp]> = [
      [15, 'lan.example\nnameserver 6.6.6.6', /octet 0x0a at 11/],
      [15, 'a b', /octet 0x20/],
      [12, 'foo\x1b[31m', /octet 0x1b/],
      [12, [0x66, 0x00, 0x6f], /octet 0x00 at 1/], // a NUL inside is not a terminator
      [12, 'caf\xe9', /octet 0xe9/],
      [15, 'lan..example', /empty label at octet 4/],
      [15, '.lan', /empty label at octet 0/],
      [12, 'x'.repeat(64), /label longer than 63/],
      [15, [0, 0], /empty/],
      [12, 'a/b', /octet 0x2f/],
    ];
    for (const [code, s, rule] of refused) {
      const e = refusal(name(code, s));
      assert.equal(e.field, code === 12 ? 'option 12 (host name)' : 'option 15 (domain name)', JSON.stringify(s));
      assert.match(e.rule, rule, JSON.stringify(s));
    }
    // 254 octets of name (RFC 3396 lets it be longer than 255): over 253, refused
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`;
    assert.equal(long.length, 254);
    assert.match(refusal(withOptions(OFFER, [53, 1, 2, 15, 200, ...Buffer.from(long.slice(0, 200)), 15, 54, ...Buffer.from(long.slice(200)), 255])).rule, /254 octets, more than 253/);
  });

  test('message (56) is escaped, never refused: a NAK reason is worth a log line whatever it holds', () => {
    const msg = (s: number[]): string | undefined => decodeMessage(withOptions(OFFER, [53, 1, 6, 56, s.length, ...s, 255])).message;
    assert.equal(msg([...Buffer.from('wrong network')]), 'wrong network');
    assert.equal(msg([0x62, 0x61, 0x64, 0x0a, 0x1b, 0x5c, 0xff, 0x00]), 'bad\\x0a\\x1b\\\\\\xff');
    assert.equal(escapeText(Buffer.from('a\r\nlevel=error')), 'a\\x0d\\x0alevel=error');
  });

  test('decoded values are copies: the input buffer may be reused', () => {
    const b = Buffer.from(load('dnsmasq-ack'));
    const m = decodeMessage(b);
    b.fill(0xee);
    assert.deepEqual(m.chaddr, MAC);
    assert.deepEqual(m.options.get(Option.DNS), Buffer.from([10, 78, 0, 53, 10, 78, 0, 54]));
  });

  test('a Uint8Array view at an offset into a larger buffer decodes like the bytes alone', () => {
    const ack = load('dnsmasq-ack');
    const big = new Uint8Array(ack.length + 100).fill(0xff);
    big.set(ack, 37);
    const view = big.subarray(37, 37 + ack.length);
    assert.deepEqual(decodeMessage(view), decodeMessage(ack));
    // and a view that ends early is truncated there, whatever follows it in memory
    assert.equal(refusal(big.subarray(37, 37 + 200)).field, 'length');
  });
});

describe('encoder', () => {
  const discover: ClientMessage = {
    type: MessageType.DISCOVER,
    xid: 0x0bea7451,
    broadcast: false,
    chaddr: MAC,
    clientId: CLIENT_ID_MAC,
    hostname: 'foo',
    parameterRequest: PRL_UDHCPC,
    maxMessageSize: 576,
  };

  /** udhcpc's capture without its vendor class (option 60, which ours does not send), re-padded to 300. */
  function withoutVendorClass(b: Buffer): Buffer {
    const at = b.indexOf(Buffer.from([0x3c, 0x0c]), 240);
    assert.ok(at > 240);
    const cut = Buffer.concat([b.subarray(0, at), b.subarray(at + 14)]);
    return Buffer.concat([cut, Buffer.alloc(300 - cut.length)]);
  }

  test("a DISCOVER like udhcpc's is udhcpc's bytes but for its vendor class: same header, options in the same order, END, zero padding to 300", () => {
    const ours = encodeClientMessage(discover);
    assert.equal(ours.length, 300);
    assert.equal(ours.toString('hex'), withoutVendorClass(load('udhcpc-discover')).toString('hex'));
  });

  test("a SELECTING REQUEST and a RELEASE like udhcpc's: byte for byte (the RELEASE carries no vendor class)", () => {
    const request: ClientMessage = { ...discover, type: MessageType.REQUEST, requestedAddress: '10.78.0.110', serverId: '10.78.0.1' };
    assert.equal(encodeClientMessage(request).toString('hex'), withoutVendorClass(load('udhcpc-request')).toString('hex'));
    const release = decodeMessage(load('udhcpc-release'));
    const ours = encodeClientMessage({ type: MessageType.RELEASE, xid: release.xid, broadcast: false, ciaddr: '10.78.0.110', chaddr: MAC, clientId: CLIENT_ID_MAC, serverId: '10.78.0.1' });
    assert.deepEqual(ours, load('udhcpc-release'));
  });

  test('encode -> decode round trip for every client message type', () => {
    const cid = Buffer.from('ff0000000100040011223344556677889900aabbccddeeff', 'hex');
    const messages: ClientMessage[] = [
      { ...discover, clientId: cid, rapidCommit: true, secs: 3, broadcast: true, requestedAddress: '10.78.0.110' },
      { ...discover, type: MessageType.REQUEST, requestedAddress: '10.99.0.5' }, // INIT-REBOOT
      { ...discover, type: MessageType.REQUEST, ciaddr: '10.78.0.110', hostname: undefined }, // RENEWING
      { type: MessageType.DECLINE, xid: 1, broadcast: false, chaddr: MAC, clientId: cid, requestedAddress: '10.78.0.110', serverId: '10.78.0.1', message: 'address in use (ARP reply from 02:00:00:00:00:09)' },
      { type: MessageType.RELEASE, xid: 0xffffffff, broadcast: false, chaddr: MAC, clientId: cid, ciaddr: '10.78.0.110', serverId: '10.78.0.1' },
      { type: MessageType.INFORM, xid: 0, broadcast: false, chaddr: MAC, clientId: cid, ciaddr: '192.168.1.7', parameterRequest: [1, 3, 6, 15, 119] },
    ];
    for (const c of messages) {
      const b = encodeClientMessage(c);
      const m = decodeMessage(b);
      const at = JSON.stringify({ ...c, chaddr: undefined, clientId: undefined });
      assert.equal(m.op, 1, at);
      assert.equal(m.htype, 1, at);
      assert.equal(m.type, c.type, at);
      assert.equal(m.xid, c.xid, at);
      assert.equal(m.secs, c.secs ?? 0, at);
      assert.equal(m.broadcast, c.broadcast, at);
      assert.equal(m.ciaddr, c.ciaddr ?? '0.0.0.0', at);
      assert.deepEqual([m.yiaddr, m.siaddr, m.giaddr], ['0.0.0.0', '0.0.0.0', '0.0.0.0'], at);
      assert.deepEqual(m.chaddr, c.chaddr, at);
      assert.deepEqual(m.clientId, c.clientId, at);
      assert.equal(m.hostname, c.hostname, at);
      assert.equal(m.requestedAddress, c.requestedAddress, at);
      assert.equal(m.serverId, c.serverId, at);
      assert.deepEqual(m.parameterRequest, c.parameterRequest, at);
      assert.equal(m.maxMessageSize, c.maxMessageSize, at);
      assert.equal(m.rapidCommit, c.rapidCommit, at);
      assert.equal(m.message, c.message, at);
      assert.ok(b.length >= 300, at);
    }
  });

  test('at least 300 octets, not padded past what the options need, and never over 548', () => {
    const big: ClientMessage = { ...discover, clientId: Buffer.alloc(200, 7), parameterRequest: Array.from({ length: 40 }, (_, i) => i + 1) };
    const b = encodeClientMessage(big);
    assert.equal(b.length, 240 + 3 + 4 + 42 + 5 + 202 + 1);
    assert.equal(b[b.length - 1], 255);
    const tooBig = { ...big, parameterRequest: Array.from({ length: 100 }, (_, i) => i + 1) };
    assert.deepEqual([encodeRefusal(tooBig).field, encodeRefusal(tooBig).rule], ['options', '557 octets, more than the 548 every server must accept']);
  });

  test('RFC 2131 Table 5 and field checks: what a client message must and must not carry', () => {
    const base = { xid: 1, broadcast: false, chaddr: MAC, clientId: CLIENT_ID_MAC };
    const cases: Array<[ClientMessage, string, RegExp]> = [
      [{ ...base, type: MessageType.DISCOVER, serverId: '10.78.0.1' }, 'serverId', /not in a DISCOVER/],
      [{ ...base, type: MessageType.DISCOVER, ciaddr: '10.78.0.110' }, 'ciaddr', /must be 0 in a DISCOVER/],
      [{ ...base, type: MessageType.REQUEST }, 'requestedAddress', /required in a REQUEST/],
      [{ ...base, type: MessageType.REQUEST, serverId: '10.78.0.1' }, 'requestedAddress', /required/],
      [{ ...base, type: MessageType.REQUEST, ciaddr: '10.78.0.110', serverId: '10.78.0.1' }, 'serverId', /renewing or rebinding/],
      [{ ...base, type: MessageType.REQUEST, ciaddr: '10.78.0.110', requestedAddress: '10.78.0.110' }, 'requestedAddress', /renewing/],
      [{ ...base, type: MessageType.REQUEST, requestedAddress: '10.78.0.110', rapidCommit: true }, 'rapidCommit', /only a DISCOVER/],
      [{ ...base, type: MessageType.DECLINE, serverId: '10.78.0.1' }, 'requestedAddress', /required in a DECLINE/],
      [{ ...base, type: MessageType.DECLINE, requestedAddress: '10.78.0.110' }, 'serverId', /required in a DECLINE/],
      [{ ...base, type: MessageType.DECLINE, requestedAddress: '10.78.0.110', serverId: '10.78.0.1', parameterRequest: [1] }, 'parameterRequest', /not in a DECLINE/],
      [{ ...base, type: MessageType.RELEASE, serverId: '10.78.0.1' }, 'ciaddr', /required in a RELEASE/],
      [{ ...base, type: MessageType.RELEASE, ciaddr: '10.78.0.110' }, 'serverId', /required in a RELEASE/],
      [{ ...base, type: MessageType.RELEASE, ciaddr: '10.78.0.110', serverId: '10.78.0.1', hostname: 'foo' }, 'hostname', /not in a RELEASE/],
      [{ ...base, type: MessageType.INFORM }, 'ciaddr', /required in an INFORM/],
      [{ ...base, type: MessageType.INFORM, ciaddr: '10.0.0.2', serverId: '10.0.0.1' }, 'serverId', /not in an INFORM/],
      [{ ...base, type: MessageType.DISCOVER, message: 'hi' }, 'message', /only a DECLINE or RELEASE/],
      [{ ...base, type: 2 as ClientMessage['type'] }, 'type', /not a client message type/],
      [{ ...base, type: MessageType.DISCOVER, xid: -1 }, 'xid', /0-4294967295/],
      [{ ...base, type: MessageType.DISCOVER, xid: 2 ** 32 }, 'xid', /0-4294967295/],
      [{ ...base, type: MessageType.DISCOVER, secs: 65536 }, 'secs', /0-65535/],
      [{ ...base, type: MessageType.DISCOVER, chaddr: MAC.subarray(0, 5) }, 'chaddr', /must be 6 octets/],
      [{ ...base, type: MessageType.DISCOVER, clientId: Buffer.from([1]) }, 'clientId', /2-255 octets/],
      [{ ...base, type: MessageType.DISCOVER, clientId: Buffer.alloc(256) }, 'clientId', /2-255 octets/],
      [{ ...base, type: MessageType.DISCOVER, hostname: 'foo bar' }, 'hostname', /octet 0x20/],
      [{ ...base, type: MessageType.DISCOVER, hostname: '' }, 'hostname', /empty/],
      [{ ...base, type: MessageType.DISCOVER, parameterRequest: [] }, 'parameterRequest', /1-255 option codes/],
      [{ ...base, type: MessageType.DISCOVER, parameterRequest: [1, 255] }, 'parameterRequest[1]', /PAD or END/],
      [{ ...base, type: MessageType.DISCOVER, parameterRequest: [1, 256] }, 'parameterRequest[1]', /0-255/],
      [{ ...base, type: MessageType.DISCOVER, maxMessageSize: 575 }, 'maxMessageSize', /below 576/],
      [{ ...base, type: MessageType.DISCOVER, requestedAddress: '10.78.0.0110' }, 'requestedAddress', /not a dotted-quad/],
      [{ ...base, type: MessageType.DISCOVER, requestedAddress: '10.78.0.256' }, 'requestedAddress', /above 255/],
      [{ ...base, type: MessageType.DISCOVER, requestedAddress: '010.78.0.1' }, 'requestedAddress', /not a dotted-quad/],
      [{ ...base, type: MessageType.RELEASE, ciaddr: '10.78.0.110', serverId: '10.78.0.1', message: 'bye\n' }, 'message', /printable ASCII/],
    ];
    for (const [m, field, rule] of cases) {
      const e = encodeRefusal(m);
      assert.equal(e.field, field, JSON.stringify({ ...m, chaddr: undefined }));
      assert.match(e.rule, rule, JSON.stringify({ ...m, chaddr: undefined }));
    }
  });
});

describe('fuzz', () => {
  test('20,000 seeded mutations of the captures: only DhcpDecodeError; whatever decodes keeps the decoder\'s promises', () => {
    const rand = prng(0x64686370);
    const seeds = FIXTURE_NAMES.map(load);
    const pick = (n: number): number => Math.floor(rand() * n);
    const special = [0x00, 0x01, 0x02, 0x03, 0x04, 0x34, 0x35, 0x3d, 0x0c, 0x0f, 0x38, 0xff, 0x80];
    const stats = { decoded: 0, refused: 0, iterations: 20_000 };
    const rules = new Map<string, number>();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < stats.iterations; i++) {
      let b = Buffer.from(seeds[pick(seeds.length)]!);
      for (let k = 1 + pick(4); k > 0; k--) {
        const op = pick(7);
        const at = pick(b.length + 1);
        if (op === 0 && b.length > 0) b[at % b.length]! ^= 1 << pick(8);
        else if (op === 1) b = Buffer.concat([b.subarray(0, at), Buffer.from([pick(256)]), b.subarray(at)]);
        else if (op === 2 && b.length > 0) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        else if (op === 3) b = b.subarray(0, pick(4) === 0 ? at : 240 + pick(Math.max(1, b.length - 239)));
        else if (op === 4 && b.length > 0) b[at % b.length] = special[pick(special.length)]!;
        else if (op === 5 && b.length > 241) {
          // an option's length octet: walk the options to one and change it
          let p = 240;
          const stops: number[] = [];
          while (p + 1 < b.length && b[p] !== 255) {
            if (b[p] === 0) p++;
            else {
              stops.push(p + 1);
              p += 2 + b[p + 1]!;
            }
          }
          if (stops.length) b[stops[pick(stops.length)]!] = pick(3) === 0 ? pick(256) : (b[stops[0]!]! + pick(5) - 2) & 0xff;
        } else if (op === 6 && b.length > 244) {
          // overload: option 52 at the start of the options, file and sname filled with option-like bytes
          b = Buffer.concat([b.subarray(0, 240), Buffer.from([52, 1, pick(5)]), b.subarray(240)]);
          for (let j = 44; j < 236; j++) if (pick(3) === 0) b[j] = special[pick(special.length)]!;
        }
      }
      // mostly with the cookie intact, so that the options get exercised
      if (b.length >= 240 && pick(5) !== 0) b.writeUInt32BE(0x63825363, 236);
      let m: DhcpMessage;
      try {
        m = decodeMessage(b);
      } catch (e) {
        if (!(e instanceof DhcpDecodeError)) throw new Error(`iteration ${i}: ${String(e)} for ${b.toString('hex')}`);
        rules.set(e.field, (rules.get(e.field) ?? 0) + 1);
        stats.refused++;
        continue;
      }
      stats.decoded++;
      const at = `iteration ${i}: ${b.toString('hex')}`;
      // nothing allocated beyond the packet: the options hold at most its bytes
      let held = 0;
      for (const [code, v] of m.options) {
        assert.ok(code !== Option.PAD && code !== Option.END, at);
        held += v.length;
      }
      assert.ok(held + m.chaddr.length <= b.length, at);
      assert.ok(m.chaddr.length <= 16, at);
      assert.ok(m.type >= 1 && m.type <= 8, at);
      // what reaches configuration and logs is clean
      for (const s of [m.hostname, m.domain]) if (s !== undefined) assert.match(s, /^[A-Za-z0-9._-]+$/, at);
      if (m.message !== undefined) assert.match(m.message, /^[\x20-\x7e]*$/, at);
      for (const list of [m.routers, m.dns]) if (list) assert.ok(list.length > 0 && list.every((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a)), at);
      assert.deepEqual(decodeMessage(b), m, at);
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const top = [...rules].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([f, n]) => `${f} ${n}`).join(', ');
    console.log(`fuzz: ${stats.iterations} mutations, ${stats.decoded} decoded, ${stats.refused} refused (most: ${top}), ${ms.toFixed(0)} ms`);
    assert.ok(stats.decoded > 1000 && stats.refused > 1000, JSON.stringify(stats));
    assert.ok(rules.size >= 10, `refusals named only ${rules.size} fields: ${[...rules.keys()].join(', ')}`);
    assert.ok(ms < 5000, `${ms} ms`);
  });
});
