import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttributeDecoder,
  AttributeEncoder,
  decodeAttrs,
  decodeMessages,
  encodeMessage,
  formatHeader,
  formatHeaderFlags,
  HeaderFlags,
  NLA_F_NESTED,
  NetlinkDecodeError,
  parseDone,
  parseError,
  Policy,
  PolicyEncoder,
} from '../../src/netns/netlink/index.js';
import { decodeAddress, decodeLink, decodeNsid, decodeRoute, RTM_NAMES } from '../../src/netns/rtnl/index.js';
import { fixtureNames, loadFixture } from '../fixtures/netlink/load.js';
import { prng } from '../helpers/prng.js';

describe('header flags', () => {
  test('a typed set with per-kind names', () => {
    const f = HeaderFlags.of('request', 'ack', 'create', 'excl');
    assert.equal(f.value, 0x605);
    assert.ok(f.has('request', 'ack'));
    assert.ok(!f.has('echo'));
    assert.equal(f.format('new'), 'REQUEST|ACK|EXCL|CREATE');
    assert.equal(f.without('ack').format('new'), 'REQUEST|EXCL|CREATE');
    assert.equal(HeaderFlags.of('request', 'dump').format('get'), 'REQUEST|DUMP');
    assert.equal(formatHeaderFlags(0x300, 'ack'), 'CAPPED|ACK_TLVS');
    assert.equal(formatHeaderFlags(0x202, 'plain'), 'MULTI|0x200');
    assert.equal(formatHeaderFlags(0), '0');
    assert.throws(() => HeaderFlags.from(0x10000), RangeError);
  });

  test('formatHeader names rtnetlink types through a naming hook', () => {
    const msg = decodeMessages(encodeMessage({ type: 16, flags: 0x605, body: Buffer.alloc(16) }, 7, 0))[0]!;
    const naming = { typeName: (t: number) => RTM_NAMES[t], flagContext: () => 'new' as const };
    assert.equal(formatHeader(msg.header, naming), 'RTM_NEWLINK seq=7 pid=0 flags=REQUEST|ACK|EXCL|CREATE len=32');
  });
});

describe('messages', () => {
  test('encode pads to 4 bytes and decode splits a datagram', () => {
    const a = encodeMessage({ type: 0x10, flags: 1, body: Buffer.from([1, 2, 3, 4, 5, 0, 0, 0]) }, 1, 99);
    const b = encodeMessage({ type: 0x11, flags: 5, body: Buffer.alloc(0) }, 2, 99);
    const msgs = decodeMessages(Buffer.concat([a, b]));
    assert.equal(msgs.length, 2);
    assert.deepEqual(msgs[0]!.header, { length: 24, type: 0x10, flags: 1, seq: 1, pid: 99 });
    assert.equal(msgs[1]!.offset, 24);
    assert.equal(msgs[1]!.payload.length, 0);
  });

  test('malformed datagrams are NetlinkDecodeError', () => {
    const good = encodeMessage({ type: 0x10, flags: 1, body: Buffer.alloc(4) }, 1, 0);
    const short = Buffer.from(good);
    short.writeUInt32LE(8, 0);
    const long = Buffer.from(good);
    long.writeUInt32LE(64, 0);
    for (const bad of [short, long, Buffer.concat([good, Buffer.alloc(5)]), good.subarray(0, 10)]) {
      assert.throws(() => decodeMessages(bad), NetlinkDecodeError);
    }
  });
});

describe('attribute encoder', () => {
  test('lengths exclude padding; payloads are 4-byte aligned', () => {
    const e = new AttributeEncoder().u8(1, 7).u16(2, 0x1234).u32(3, 0xdeadbeef).s32(4, -1).cstring(5, 'ab').string(6, 'xyz').flag(7);
    assert.equal(
      e.encode().toString('hex'),
      '0500010007000000' + '0600020034120000' + '08000300efbeadde' + '08000400ffffffff' + '0700050061620000' + '0700060078797a00' + '04000700',
    );
  });

  test('nested attributes, with and without NLA_F_NESTED, with a fixed header', () => {
    const plain = new AttributeEncoder().nested(18, (n) => n.u32(1, 4)).encode();
    assert.equal(plain.toString('hex'), '0c001200' + '0800010004000000');
    const flagged = new AttributeEncoder().nested(18, (n) => n.u8(1, 1), { flag: true }).encode();
    assert.equal(flagged.readUInt16LE(2), 18 | NLA_F_NESTED);
    const withHeader = new AttributeEncoder().nested(1, (n) => n.cstring(3, 'v1'), { header: new Uint8Array(16) }).encode();
    // A nest's length includes its children's padding (as nla_nest_end computes it): 4 + 16 + 8.
    assert.equal(withHeader.readUInt16LE(0), 28);
  });

  test('refuses values that do not fit', () => {
    const e = new AttributeEncoder();
    assert.throws(() => e.u8(1, 256), RangeError);
    assert.throws(() => e.u16(1, -1), RangeError);
    assert.throws(() => e.u32(1, 2 ** 32), RangeError);
    assert.throws(() => e.s32(1, 2 ** 31), RangeError);
    assert.throws(() => e.cstring(1, 'a\0b'), RangeError);
    assert.throws(() => e.bytes(1, new Uint8Array(70000)), RangeError);
    assert.throws(() => e.u8(0x10000, 1), RangeError);
  });
});

describe('attribute decoder', () => {
  const bytes = new AttributeEncoder().u32(1, 42).cstring(2, 'eth0').nested(3, (n) => n.u16(1, 9).u8(2, 1)).encode();

  test('iterates with typed accessors and nested()', () => {
    const d = new AttributeDecoder(bytes);
    const seen: unknown[] = [];
    while (d.next()) {
      switch (d.type()) {
        case 1: seen.push(d.u32()); break;
        case 2: seen.push(d.string()); break;
        case 3: d.nested((n) => { while (n.next()) seen.push(n.type() === 1 ? n.u16() : n.u8()); }); break;
      }
    }
    assert.equal(d.err(), undefined);
    assert.deepEqual(seen, [42, 'eth0', 9, 1]);
  });

  test('the first error sticks and stops the iteration', () => {
    const d = new AttributeDecoder(bytes);
    assert.ok(d.next());
    assert.equal(d.u16(), 0); // a u32 attribute read as u16
    const first = d.err();
    assert.ok(first instanceof NetlinkDecodeError);
    assert.match(first.message, /expected 2/);
    assert.equal(d.next(), false);
    d.fail('later');
    assert.equal(d.err(), first);
  });

  test('an error inside nested() becomes the parent error', () => {
    const d = new AttributeDecoder(bytes);
    while (d.next()) if (d.type() === 3) d.nested((n) => { n.next(); n.u32(); });
    assert.ok(d.err() instanceof NetlinkDecodeError);
  });

  test('bad lengths and truncated headers are errors, never reads out of bounds', () => {
    const overlong = Buffer.from(bytes);
    overlong.writeUInt16LE(200, 0);
    for (const b of [overlong, bytes.subarray(0, 2), bytes.subarray(0, 6), Buffer.from([3, 0, 1, 0])]) {
      const d = new AttributeDecoder(b);
      while (d.next()) d.bytes();
      assert.ok(d.err() instanceof NetlinkDecodeError, b.toString('hex'));
    }
  });
});

type Leaf = { type: number; kind: 'u8' | 'u16' | 'u32' | 's32' | 'u64' | 'cstring' | 'binary'; value: number | bigint | string | Buffer };
type Node = Leaf | { type: number; kind: 'nested'; children: Node[] };

function randomTree(rand: () => number, depth: number): Node[] {
  const n = Math.floor(rand() * 6);
  const out: Node[] = [];
  for (let i = 0; i < n; i++) {
    const type = 1 + Math.floor(rand() * 200);
    const pick = Math.floor(rand() * (depth > 0 ? 8 : 7));
    switch (pick) {
      case 0: out.push({ type, kind: 'u8', value: Math.floor(rand() * 256) }); break;
      case 1: out.push({ type, kind: 'u16', value: Math.floor(rand() * 65536) }); break;
      case 2: out.push({ type, kind: 'u32', value: Math.floor(rand() * 2 ** 32) }); break;
      case 3: out.push({ type, kind: 's32', value: Math.floor(rand() * 2 ** 32) - 2 ** 31 }); break;
      case 4: out.push({ type, kind: 'u64', value: BigInt(Math.floor(rand() * 2 ** 53)) }); break;
      case 5: out.push({ type, kind: 'cstring', value: Array.from({ length: Math.floor(rand() * 20) }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join('') }); break;
      case 6: out.push({ type, kind: 'binary', value: Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256))) }); break;
      default: out.push({ type, kind: 'nested', children: randomTree(rand, depth - 1) });
    }
  }
  return out;
}

function encodeTree(e: AttributeEncoder, nodes: Node[]): void {
  for (const n of nodes) {
    switch (n.kind) {
      case 'u8': e.u8(n.type, n.value as number); break;
      case 'u16': e.u16(n.type, n.value as number); break;
      case 'u32': e.u32(n.type, n.value as number); break;
      case 's32': e.s32(n.type, n.value as number); break;
      case 'u64': e.u64(n.type, n.value as bigint); break;
      case 'cstring': e.cstring(n.type, n.value as string); break;
      case 'binary': e.bytes(n.type, n.value as Buffer); break;
      case 'nested': e.nested(n.type, (c) => encodeTree(c, n.children), { flag: true }); break;
    }
  }
}

/** Decodes by the shape of `expected`, checking every value on the way. */
function checkTree(d: AttributeDecoder, expected: Node[]): void {
  for (const n of expected) {
    assert.ok(d.next(), `attribute ${n.type} missing`);
    assert.equal(d.type(), n.type);
    switch (n.kind) {
      case 'u8': assert.equal(d.u8(), n.value); break;
      case 'u16': assert.equal(d.u16(), n.value); break;
      case 'u32': assert.equal(d.u32(), n.value); break;
      case 's32': assert.equal(d.s32(), n.value); break;
      case 'u64': assert.equal(d.u64(), n.value); break;
      case 'cstring': assert.equal(d.string(), n.value); break;
      case 'binary': assert.deepEqual(Buffer.from(d.bytes()), n.value); break;
      case 'nested':
        assert.ok(d.nestedFlag());
        d.nested((c) => { checkTree(c, n.children); assert.equal(c.next(), false); });
        break;
    }
  }
  assert.equal(d.next(), false);
  assert.equal(d.err(), undefined);
}

describe('fuzz-ish round trips', () => {
  test('random attribute trees encode then decode to the same values', () => {
    const rand = prng(0x0a7a);
    for (let i = 0; i < 500; i++) {
      const tree = randomTree(rand, 3);
      const e = new AttributeEncoder();
      encodeTree(e, tree);
      const bytes = e.encode();
      assert.equal(bytes.length % 4, 0);
      checkTree(new AttributeDecoder(bytes), tree);
      // And inside a message, as the socket would see it.
      const [msg] = decodeMessages(encodeMessage({ type: 0x10, flags: 1, body: bytes }, i + 1, 0));
      checkTree(new AttributeDecoder(msg!.payload), tree);
    }
  });

  test('policy encoder and decodeAttrs agree through one table', () => {
    const inner = new Policy('INNER', { 1: ['IN_A', 'u16'], 2: ['IN_B', 'string'] });
    const outer = new Policy('OUTER', { 1: ['A', 'u8'], 2: ['B', 'u32'], 3: ['C', 's32'], 4: ['D', 'cstring'], 5: ['E', 'nested', inner], 6: ['F', 'flag'], 7: ['G', 'u64'] });
    const rand = prng(7);
    for (let i = 0; i < 200; i++) {
      const e = new PolicyEncoder(outer);
      const want = { A: Math.floor(rand() * 256), B: Math.floor(rand() * 2 ** 32), C: -Math.floor(rand() * 2 ** 31), D: `d${i}`, IN_A: Math.floor(rand() * 65536), IN_B: `b${i}`, G: BigInt(i) * 1000003n };
      e.put(1, want.A).put(2, want.B).put(3, want.C).put(4, want.D).nest(5, (n) => n.put(1, want.IN_A).put(2, want.IN_B)).put(6, true).put(7, want.G);
      const got = decodeAttrs(e.encode(), outer);
      assert.equal(got.number(1), want.A);
      assert.equal(got.number(2), want.B);
      assert.equal(got.number(3), want.C);
      assert.equal(got.string(4), want.D);
      assert.equal(got.nested(5)?.number(1), want.IN_A);
      assert.equal(got.nested(5)?.string(2), want.IN_B);
      assert.equal(got.get(6)?.value, true);
      assert.equal(got.get(7)?.value, want.G);
    }
    assert.throws(() => new PolicyEncoder(outer).put(1, 'x'), TypeError);
    assert.throws(() => new PolicyEncoder(outer).put(99, 1), TypeError);
    assert.throws(() => new PolicyEncoder(outer).nest(1, () => {}), TypeError);
  });
});

/** Everything a receiver might run on untrusted bytes. */
function decodeEverything(buf: Buffer): void {
  for (const m of decodeMessages(buf)) {
    switch (m.header.type) {
      case 2: parseError(m); break;
      case 3: parseDone(m); break;
      case 16: case 17: decodeLink(m.payload); break;
      case 20: case 21: decodeAddress(m.payload); break;
      case 24: case 25: decodeRoute(m.payload); break;
      case 88: case 89: decodeNsid(m.payload); break;
      default: break;
    }
  }
}

function onlyDecodeErrors(buf: Buffer, what: string): void {
  try {
    decodeEverything(buf);
  } catch (e) {
    assert.ok(e instanceof NetlinkDecodeError, `${what}: ${(e as Error).stack}`);
  }
}

describe('truncated and garbage input', () => {
  const replies = fixtureNames().flatMap((n) => loadFixture(n).received.map((b, i) => ({ name: `${n}#${i}`, b })));

  test('every kernel reply in the fixtures decodes', () => {
    assert.ok(replies.length > 40);
    for (const { name, b } of replies) assert.doesNotThrow(() => decodeEverything(b), name);
  });

  test('every truncation of every reply fails with NetlinkDecodeError or decodes', () => {
    for (const { name, b } of replies) {
      for (let cut = 0; cut < b.length; cut += b.length > 2000 ? 7 : 1) onlyDecodeErrors(b.subarray(0, cut), `${name} cut at ${cut}`);
    }
  });

  test('a truncated message whose header length was fixed up fails inside, not out of bounds', () => {
    for (const { name, b } of replies) {
      const first = decodeMessages(b)[0]!;
      for (let cut = 16; cut < first.header.length; cut += 3) {
        const c = Buffer.from(b.subarray(0, cut));
        c.writeUInt32LE(cut, 0);
        onlyDecodeErrors(c, `${name} header fixed to ${cut}`);
      }
    }
  });

  test('random bit flips and random bytes never escape as anything but NetlinkDecodeError', () => {
    const rand = prng(42);
    for (const { name, b } of replies) {
      for (let i = 0; i < 30; i++) {
        const c = Buffer.from(b);
        for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) c[Math.floor(rand() * c.length)] = Math.floor(rand() * 256);
        onlyDecodeErrors(c, `${name} flip ${i}`);
      }
    }
    for (let i = 0; i < 2000; i++) {
      const c = Buffer.from(Array.from({ length: Math.floor(rand() * 120) }, () => Math.floor(rand() * 256)));
      if (c.length >= 16 && rand() < 0.7) c.writeUInt32LE(c.length, 0); // make the outer header plausible
      if (c.length >= 16) c.writeUInt16LE([2, 3, 16, 17, 20, 88][Math.floor(rand() * 6)]!, 4);
      onlyDecodeErrors(c, `random ${i}`);
    }
  });
});
