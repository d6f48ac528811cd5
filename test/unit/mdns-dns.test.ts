import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CLASS_IN,
  decodeMessage,
  DnsDecodeError,
  DnsEncodeError,
  encodeMessage,
  FLAG_AA,
  FLAG_QR,
  type Message,
  rdataBytes,
  type ResourceRecord,
  sameName,
  TYPE,
} from '../../src/mdns/dns.js';
import { prng } from '../helpers/prng.js';
import { HexFixtures } from '../helpers/hex-fixtures.js';

const fixtures = new HexFixtures('mdns');
const load = (name: string): Buffer => fixtures.load(name);
const FIXTURE_NAMES = fixtures.names();
/** python-zeroconf 0.47.3's NSEC is malformed (see the fixtures' README): every other capture decodes. */
const MALFORMED = new Set(['zeroconf-response-aaaa']);
const DECODABLE = FIXTURE_NAMES.filter((n) => !MALFORMED.has(n));

function decodeError(buf: Uint8Array): DnsDecodeError {
  try {
    decodeMessage(buf);
  } catch (e) {
    if (e instanceof DnsDecodeError) return e;
    throw e;
  }
  assert.fail('decoded without an error');
}

function header(qd: number, an = 0, ns = 0, ar = 0, flags = 0): number[] {
  return [0, 0, flags >> 8, flags & 0xff, qd >> 8, qd & 0xff, an >> 8, an & 0xff, ns >> 8, ns & 0xff, ar >> 8, ar & 0xff];
}

function label(s: string): number[] {
  return [s.length, ...Buffer.from(s, 'latin1')];
}

const rr = (name: string, type: number, data: ResourceRecord['data'], cacheFlush = false): ResourceRecord => ({
  name,
  type,
  class: CLASS_IN,
  cacheFlush,
  ttl: 120,
  data,
});

const empty = (): Message => ({ id: 0, flags: 0, questions: [], answers: [], authorities: [], additionals: [] });

describe('captured fixtures', () => {
  test('avahi-resolve: avahi 0.8 sends a plain QM query for the name, no QU bit even on the first', () => {
    const a = decodeMessage(load('avahi-query-a'));
    assert.deepEqual(a, { ...empty(), questions: [{ name: 'dnsfx-a.local', type: TYPE.A, class: CLASS_IN, unicastResponse: false }] });
    const aaaa = decodeMessage(load('avahi-query-aaaa'));
    assert.deepEqual(aaaa.questions, [{ name: 'dnsfx-a.local', type: TYPE.AAAA, class: CLASS_IN, unicastResponse: false }]);
  });

  test("avahi's probe: ANY questions (QM) for its names, the proposed records in the authority section without cache-flush", () => {
    const m = decodeMessage(load('avahi-probe'));
    assert.equal(m.flags, 0);
    const reverse6 = '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.5.0.0.8.b.d.0.1.0.0.2.ip6.arpa';
    assert.deepEqual(
      m.questions.map((q) => [q.name, q.type, q.class, q.unicastResponse]),
      [
        [reverse6, TYPE.ANY, CLASS_IN, false],
        ['dnsfx-a.local', TYPE.ANY, CLASS_IN, false],
        ['1.2.0.192.in-addr.arpa', TYPE.ANY, CLASS_IN, false],
      ],
    );
    assert.deepEqual(m.answers, []);
    assert.deepEqual(m.authorities, [
      { ...rr('dnsfx-a.local', TYPE.A, { kind: 'a', address: '192.0.2.1' }) },
      { ...rr('1.2.0.192.in-addr.arpa', TYPE.PTR, { kind: 'ptr', target: 'dnsfx-a.local' }) },
      { ...rr('dnsfx-a.local', TYPE.AAAA, { kind: 'aaaa', address: '2001:db8:53::1' }) },
      { ...rr(reverse6, TYPE.PTR, { kind: 'ptr', target: 'dnsfx-a.local' }) },
    ]);
  });

  test("avahi's answers and announcements: QR|AA, every record cache-flush, and no NSEC anywhere", () => {
    const a = decodeMessage(load('avahi-response-a'));
    assert.equal(a.flags, FLAG_QR | FLAG_AA);
    assert.deepEqual(a.answers, [rr('dnsfx-a.local', TYPE.A, { kind: 'a', address: '192.0.2.1' }, true)]);
    assert.deepEqual(a.questions, []);
    const aaaa = decodeMessage(load('avahi-response-aaaa'));
    assert.deepEqual(aaaa.answers, [rr('dnsfx-a.local', TYPE.AAAA, { kind: 'aaaa', address: '2001:db8:53::1' }, true)]);
    const ann = decodeMessage(load('avahi-announce'));
    assert.equal(ann.flags, FLAG_QR | FLAG_AA);
    assert.deepEqual(
      ann.answers.map((r) => [r.name, r.type, r.cacheFlush, r.ttl]),
      [
        ['1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.5.0.0.8.b.d.0.1.0.0.2.ip6.arpa', TYPE.PTR, true, 120],
        ['dnsfx-a.local', TYPE.A, true, 120],
        ['1.2.0.192.in-addr.arpa', TYPE.PTR, true, 120],
        ['dnsfx-a.local', TYPE.AAAA, true, 120],
      ],
    );
    for (const name of FIXTURE_NAMES.filter((n) => n.startsWith('avahi-'))) {
      const m = decodeMessage(load(name));
      const all = [...m.answers, ...m.authorities, ...m.additionals];
      assert.ok(!all.some((r) => r.type === TYPE.NSEC), `${name} has no NSEC`);
    }
  });

  test("dig's query (EDNS OPT with a cookie) and avahi's legacy-unicast answer: id echoed, question repeated, TTL 10, no cache-flush", () => {
    const q = decodeMessage(load('dig-query'));
    assert.equal(q.flags, 0x0020); // AD, dig's default; +norec cleared RD
    assert.deepEqual(q.questions, [{ name: 'dnsfx-a.local', type: TYPE.A, class: CLASS_IN, unicastResponse: false }]);
    assert.equal(q.additionals.length, 1);
    const opt = q.additionals[0]!;
    assert.deepEqual([opt.name, opt.type, opt.class, opt.cacheFlush, opt.ttl], ['', 41, 1232, false, 0]);
    assert.equal(opt.data.kind, 'raw');
    if (opt.data.kind === 'raw') assert.deepEqual([...opt.data.bytes.subarray(0, 4)], [0, 10, 0, 8]); // COOKIE, 8 octets
    const r = decodeMessage(load('avahi-legacy-response'));
    assert.equal(r.id, q.id);
    assert.equal(r.flags, FLAG_QR | FLAG_AA);
    assert.deepEqual(r.questions, q.questions);
    assert.deepEqual(r.answers, [{ ...rr('dnsfx-a.local', TYPE.A, { kind: 'a', address: '192.0.2.1' }), ttl: 10 }]);
  });

  test("python-zeroconf's probe asks QU (and sets AA in a query); its SRV target comes out decompressed in raw rdata", () => {
    const p = decodeMessage(load('zeroconf-probe'));
    assert.equal(p.flags, FLAG_AA);
    assert.deepEqual(p.questions, [{ name: '_http._tcp.local', type: TYPE.PTR, class: CLASS_IN, unicastResponse: true }]);
    assert.deepEqual(p.authorities, [{ ...rr('_http._tcp.local', TYPE.PTR, { kind: 'ptr', target: 'dnsfx-z._http._tcp.local' }), ttl: 4500 }]);
    const wire = load('zeroconf-announce');
    const a = decodeMessage(wire);
    const srv = a.answers.find((r) => r.type === TYPE.SRV)!;
    assert.equal(srv.cacheFlush, true);
    const target = [...label('dnsfx-z'), ...label('local'), 0];
    assert.deepEqual(srv.data, { kind: 'raw', bytes: Uint8Array.from([0, 0, 0, 0, 0x1f, 0x90, ...target]) }); // priority 0, weight 0, port 8080
    // on the wire the target was a label and a pointer: the capture really was compressed
    assert.ok(wire.includes(Buffer.from([0x00, 0x21, 0x80, 0x01, 0, 0, 0, 120, 0, 16])), 'SRV rdlength 16 on the wire, 21 decompressed');
    const txt = a.answers.find((r) => r.type === TYPE.TXT)!;
    assert.deepEqual(txt.data, { kind: 'raw', bytes: Uint8Array.from([6, ...Buffer.from('path=/')]) });
  });

  test("python-zeroconf 0.47.3's NSEC (window and length written as shorts) is refused, naming the record and the rule", () => {
    const e = decodeError(load('zeroconf-response-aaaa'));
    assert.equal(e.field, 'answers[0].rdata');
    assert.match(e.reason, /NSEC bitmap length 0 outside 1-32/);
    assert.match(e.message, /^answers\[0\]\.rdata: .*\(at byte \d+\)$/);
  });

  test("ciao's announcement: two cache-flush NSECs in the additionals, next name uncompressed; rdataBytes gives back the captured rdata", () => {
    const wire = load('ciao-announce');
    const m = decodeMessage(wire);
    assert.deepEqual(m.additionals, [
      rr('dnsfx-c.local', TYPE.NSEC, { kind: 'nsec', next: 'dnsfx-c.local', types: [TYPE.A, TYPE.AAAA] }, true),
      { ...rr('dnsfx-c._http._tcp.local', TYPE.NSEC, { kind: 'nsec', next: 'dnsfx-c._http._tcp.local', types: [TYPE.TXT, TYPE.SRV] }, true), ttl: 4500 },
    ]);
    const captured = Uint8Array.from([...label('dnsfx-c'), ...label('local'), 0, 0, 4, 0x40, 0, 0, 0x08]);
    assert.deepEqual(rdataBytes(m.additionals[0]!), captured);
    assert.ok(wire.includes(Buffer.from(captured)), 'the same octets are in the capture');
    // ciao's probe proposes the loopback address too (ciao 1.3.12, restricted to the veth): record what is there
    const probe = decodeMessage(load('ciao-probe'));
    assert.deepEqual(
      probe.authorities.filter((r) => r.type === TYPE.A).map((r) => r.data),
      [
        { kind: 'a', address: '127.0.0.1' },
        { kind: 'a', address: '192.0.2.1' },
      ],
    );
  });

  test('decode(encode(decode(x))) equals decode(x) for every capture; avahi and dig ones re-encode octet for octet', () => {
    for (const name of DECODABLE) {
      const wire = load(name);
      const m = decodeMessage(wire);
      const again = encodeMessage(m);
      assert.deepEqual(decodeMessage(again), m, name);
      if (name.startsWith('avahi-') || name.startsWith('dig-')) assert.deepEqual(again, wire, `${name}: same compression as avahi/dig`);
    }
  });

  test('bytes after the last record are ignored', () => {
    const wire = load('avahi-response-a');
    assert.deepEqual(decodeMessage(Buffer.concat([wire, Buffer.from([0xc0, 0xff, 0x00, 0x40])])), decodeMessage(wire));
  });
});

describe('QU and cache-flush bits on the wire', () => {
  test('unicastResponse sets bit 15 of the question class; cacheFlush bit 15 of the record class', () => {
    const q = encodeMessage({ ...empty(), questions: [{ name: 'x.local', type: TYPE.A, class: CLASS_IN, unicastResponse: true }] });
    assert.deepEqual([...q.subarray(q.length - 4)], [0x00, 0x01, 0x80, 0x01]);
    const qm = encodeMessage({ ...empty(), questions: [{ name: 'x.local', type: TYPE.A, class: CLASS_IN, unicastResponse: false }] });
    assert.deepEqual([...qm.subarray(qm.length - 4)], [0x00, 0x01, 0x00, 0x01]);
    const r = encodeMessage({ ...empty(), flags: FLAG_QR | FLAG_AA, answers: [rr('x.local', TYPE.A, { kind: 'a', address: '10.0.0.1' }, true)] });
    const at = 12 + 9; // header, then the name: 1 x 5 local 0
    assert.deepEqual([...r.subarray(at, at + 4)], [0x00, 0x01, 0x80, 0x01]);
    assert.deepEqual(decodeMessage(r).answers[0]!.cacheFlush, true);
    assert.equal(decodeMessage(q).questions[0]!.unicastResponse, true);
  });

  test('a class above 15 bits is refused rather than silently setting the flag', () => {
    assert.throws(
      () => encodeMessage({ ...empty(), questions: [{ name: 'x.local', type: 1, class: 0x8001, unicastResponse: false }] }),
      (e: unknown) => e instanceof DnsEncodeError && e.field === 'questions[0].class',
    );
  });
});

describe('names', () => {
  test('escapes: dot, backslash and octets outside 0x21-0x7e; UTF-8 as \\DDD; round-trips both ways', () => {
    const labels = [[0x61, 0x2e, 0x62], [0x5c], [0x20, 0x41], [0xc3, 0xa9, 0x74, 0xc3, 0xa9], [0x7e, 0x21, 0x7f]];
    const wire = Buffer.from([...header(1), ...labels.flatMap((l) => [l.length, ...l]), 0, 0, 1, 0, 1]);
    const m = decodeMessage(wire);
    const name = 'a\\.b.\\\\.\\032A.\\195\\169t\\195\\169.~!\\127';
    assert.equal(m.questions[0]!.name, name);
    assert.deepEqual(encodeMessage(m), wire);
    assert.equal(decodeMessage(encodeMessage({ ...empty(), questions: [{ name: '', type: 1, class: 1, unicastResponse: false }] })).questions[0]!.name, '');
  });

  test('encodeMessage accepts exactly the presentation form', () => {
    const bad: Array<[string, RegExp]> = [
      ['x.local.', /empty label/],
      ['.local', /empty label/],
      ['a..b', /empty label/],
      ['a b', /U\+0020/],
      ['é.local', /U\+00e9/],
      ['a\\b', /must be followed by/],
      ['a\\25', /must be followed by/],
      ['\\256', /above 255/],
      ['x'.repeat(64), /64 octets/],
      [Array.from({ length: 128 }, () => 'a').join('.'), /longer than 255/],
    ];
    for (const [name, why] of bad) {
      assert.throws(
        () => encodeMessage({ ...empty(), questions: [{ name, type: 1, class: 1, unicastResponse: false }] }),
        (e: unknown) => e instanceof DnsEncodeError && e.field === 'questions[0].name' && why.test(e.reason),
        name,
      );
    }
    // the longest legal name: 127 one-octet labels = 255 octets with the root
    const longest = Array.from({ length: 127 }, () => 'a').join('.');
    assert.equal(decodeMessage(encodeMessage({ ...empty(), questions: [{ name: longest, type: 1, class: 1, unicastResponse: false }] })).questions[0]!.name, longest);
  });

  test('sameName folds A-Z only, on the octets', () => {
    assert.ok(sameName('Web.LOCAL', 'web.local'));
    assert.ok(sameName('\\065b.local', 'ab.local'));
    assert.ok(sameName('', ''));
    assert.ok(!sameName('web.local', 'web.local2'));
    assert.ok(!sameName('a\\.b.local', 'a.b.local'));
    assert.ok(!sameName('\\195\\137', '\\195\\169')); // É and é in UTF-8: not folded
    assert.ok(!sameName('a.local', 'a..local'));
  });

  test('compression: suffixes point to earlier names, case kept; the NSEC next name is written whole', () => {
    const m: Message = {
      ...empty(),
      flags: FLAG_QR | FLAG_AA,
      answers: [
        rr('Host.local', TYPE.A, { kind: 'a', address: '192.0.2.7' }, true),
        rr('7.2.0.192.in-addr.arpa', TYPE.PTR, { kind: 'ptr', target: 'Host.local' }, true),
        rr('host.local', TYPE.AAAA, { kind: 'aaaa', address: '2001:DB8::7' }, true),
      ],
      additionals: [rr('Host.local', TYPE.NSEC, { kind: 'nsec', next: 'Host.local', types: [TYPE.A, TYPE.PTR, TYPE.AAAA] }, true)],
    };
    const wire = encodeMessage(m);
    const back = decodeMessage(wire);
    assert.equal(back.answers[1]!.data.kind === 'ptr' && back.answers[1]!.data.target, 'Host.local');
    assert.equal(back.answers[2]!.name, 'host.local'); // not a pointer to "Host": case is kept
    assert.deepEqual(back.answers[2]!.data, { kind: 'aaaa', address: '2001:db8::7' });
    // PTR target is a bare pointer to byte 12 (rdlength 2)
    const ptrAt = wire.indexOf(Buffer.from([0x00, 0x0c, 0x80, 0x01, 0, 0, 0, 120, 0, 2, 0xc0, 12]));
    assert.ok(ptrAt > 0, 'PTR rdata compressed');
    // NSEC: owner compressed, next name in full
    const nsecRdata = Buffer.from([...label('Host'), ...label('local'), 0, 0, 4, 0x40, 0x08, 0, 0x08]);
    assert.ok(wire.subarray(wire.length - nsecRdata.length).equals(nsecRdata));
    assert.deepEqual(back.additionals, m.additionals);
    // a second "local" suffix points at the first: 'host.local' costs 5 + 2 octets
    assert.ok(wire.includes(Buffer.from([...label('host'), 0xc0, 17])));
  });
});

describe('rdata', () => {
  test('rdataBytes: the uncompressed canonical rdata, case kept', () => {
    assert.deepEqual(rdataBytes(rr('x', TYPE.A, { kind: 'a', address: '192.0.2.1' })), Uint8Array.from([192, 0, 2, 1]));
    assert.deepEqual(rdataBytes(rr('x', TYPE.PTR, { kind: 'ptr', target: 'Ab.local' })), Uint8Array.from([...label('Ab'), ...label('local'), 0]));
    assert.deepEqual(rdataBytes(rr('x', TYPE.AAAA, { kind: 'aaaa', address: '::ffff:192.0.2.1' })), Uint8Array.from([...new Array(10).fill(0), 0xff, 0xff, 192, 0, 2, 1]));
    assert.deepEqual(rdataBytes(rr('x', TYPE.NSEC, { kind: 'nsec', next: '', types: [1, 256, 65535] })), Uint8Array.from([0, 0, 1, 0x40, 1, 1, 0x80, 255, 32, ...new Array(31).fill(0), 0x01]));
    assert.deepEqual(rdataBytes(rr('x', 99, { kind: 'raw', bytes: Uint8Array.from([1, 2]) })), Uint8Array.from([1, 2]));
  });

  test('AAAA text is RFC 5952: lowercase, longest zero run (first on a tie) as ::, a lone zero group kept', () => {
    const text = (bytes: number[]): string => {
      const m = decodeMessage(Buffer.from([...header(0, 1), 0, 0, 28, 0, 1, 0, 0, 0, 0, 0, 16, ...bytes]));
      const d = m.answers[0]!.data;
      return d.kind === 'aaaa' ? d.address : '';
    };
    assert.equal(text([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]), '2001:db8:0:1::1');
    assert.equal(text([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]), '2001:db8::1:0:0:1');
    assert.equal(text([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0xab, 0xcd, 0, 1, 0, 1, 0, 1, 0, 1]), '2001:db8:0:abcd:1:1:1:1');
    assert.equal(text(new Array(16).fill(0)), '::');
    assert.equal(text([0xfe, 0x80, ...new Array(13).fill(0), 1]), 'fe80::1');
  });

  test('encoder refusals name the field', () => {
    const cases: Array<[ResourceRecord, string, RegExp]> = [
      [rr('x', TYPE.A, { kind: 'a', address: '192.0.2.256' }), 'answers[0].data.address', /dotted quad/],
      [rr('x', TYPE.A, { kind: 'a', address: '01.2.3.4' }), 'answers[0].data.address', /dotted quad/],
      [rr('x', TYPE.AAAA, { kind: 'aaaa', address: 'fe80::1%eth0' }), 'answers[0].data.address', /without a zone/],
      [rr('x', TYPE.AAAA, { kind: 'a', address: '192.0.2.1' }), 'answers[0].data.kind', /type A \(1\)/],
      [rr('x', TYPE.TXT, { kind: 'ptr', target: 'y' }), 'answers[0].data.kind', /PTR/],
      [rr('x', TYPE.NSEC, { kind: 'nsec', next: 'x', types: [28, 1] }), 'answers[0].data.types[1]', /ascending and unique/],
      [rr('x', TYPE.NSEC, { kind: 'nsec', next: 'x', types: [1, 1] }), 'answers[0].data.types[1]', /ascending and unique/],
      [rr('x', TYPE.NSEC, { kind: 'nsec', next: 'x', types: [65536] }), 'answers[0].data.types[0]', /0-65535/],
      [{ ...rr('x', 99, { kind: 'raw', bytes: new Uint8Array(65536) }) }, 'answers[0].data', /65536 octets/],
      [{ ...rr('x', TYPE.A, { kind: 'a', address: '192.0.2.1' }), ttl: -1 }, 'answers[0].ttl', /0-4294967295/],
    ];
    for (const [record, field, why] of cases) {
      assert.throws(
        () => encodeMessage({ ...empty(), answers: [record] }),
        (e: unknown) => e instanceof DnsEncodeError && e.field === field && why.test(e.reason),
        `${field} ${why}`,
      );
    }
    assert.throws(() => encodeMessage({ ...empty(), id: 65536 }), (e: unknown) => e instanceof DnsEncodeError && e.field === 'id');
  });
});

describe('decoding errors (mutations of the captures and hand-made packets)', () => {
  test('every truncation of every capture either decodes or throws DnsDecodeError', () => {
    let decoded = 0;
    let refused = 0;
    for (const name of FIXTURE_NAMES) {
      const wire = load(name);
      for (let n = 0; n < wire.length; n++) {
        try {
          decodeMessage(wire.subarray(0, n));
          decoded++;
        } catch (e) {
          assert.ok(e instanceof DnsDecodeError, `${name} cut to ${n}: ${String(e)}`);
          refused++;
        }
      }
    }
    assert.ok(refused > 0);
    assert.equal(decoded, 0, 'the header counts every record, so any cut loses one');
  });

  test('truncations name what was cut', () => {
    assert.match(decodeError(new Uint8Array(11)).reason, /truncated header/);
    const q = load('avahi-query-a');
    assert.equal(decodeError(q.subarray(0, 20)).field, 'questions[0].name');
    assert.match(decodeError(q.subarray(0, 29)).reason, /truncated question/);
    const r = load('avahi-response-a');
    assert.match(decodeError(r.subarray(0, 30)).reason, /truncated record/);
    const e = decodeError(r.subarray(0, r.length - 1));
    assert.equal(e.field, 'answers[0].rdlength');
    assert.match(e.reason, /rdlength 4 overruns the message by 1 octets/);
  });

  test('a pointer to itself, a forward pointer and a pointer into the header are refused', () => {
    const self = decodeError(Buffer.from([...header(1), 0xc0, 12, 0, 1, 0, 1]));
    assert.equal(self.field, 'questions[0].name');
    assert.match(self.reason, /strictly before byte 12/);
    // two names pointing at each other: the first pointer is forward
    const loop = decodeError(Buffer.from([...header(2), 0xc0, 18, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1]));
    assert.match(loop.reason, /pointer to byte 18 must point strictly before byte 12/);
    // a later name's labels that point back into themselves
    const inner = decodeError(Buffer.from([...header(2), 0, 0, 1, 0, 1, ...label('a'), 0xc0, 17, 0, 1, 0, 1]));
    assert.match(inner.reason, /pointer to byte 17 must point strictly before byte 17/);
    const intoHeader = decodeError(Buffer.from([...header(1), 0xc0, 4, 0, 1, 0, 1]));
    assert.match(intoHeader.reason, /into the header/);
  });

  test('127 pointer jumps decode, 128 do not', () => {
    // answers[0]: root name, type 99 (rdata not interpreted) holding the name "a" at byte 23 and a
    // chain of pointers, each to the one before; answers[1]'s name points at the last of them.
    const wrap = (jumps: number): Buffer => {
      const rdata = [...label('a'), 0];
      let prev = 23;
      for (let i = 1; i < jumps; i++) {
        const at = 23 + rdata.length;
        rdata.push(0xc0 | (prev >> 8), prev & 0xff);
        prev = at;
      }
      return Buffer.from([
        ...header(0, 2),
        ...[0, 0, 99, 0, 1, 0, 0, 0, 0, rdata.length >> 8, rdata.length & 0xff, ...rdata],
        ...[0xc0 | (prev >> 8), prev & 0xff, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 10, 0, 0, 1],
      ]);
    };
    assert.equal(decodeMessage(wrap(127)).answers[1]!.name, 'a');
    const e = decodeError(wrap(128));
    assert.equal(e.field, 'answers[1].name');
    assert.match(e.reason, /more than 127 compression pointers/);
  });

  test('label types 0x40 and 0x80 are refused', () => {
    for (const b of [0x40, 0x80, 0x7f, 0xbf]) {
      const e = decodeError(Buffer.from([...header(1), b, 0, 0, 1, 0, 1]));
      assert.match(e.reason, /label type 0x[48]0 is not supported/);
      assert.equal(e.offset, 12);
    }
  });

  test('a name longer than 255 octets (through pointers) is refused', () => {
    const l63 = label('x'.repeat(63));
    // name k = one 63-octet label + pointer to name k-1: 1 + 64k octets; k = 4 gives 257
    const build = (k: number): Buffer => {
      const bytes = [...header(k), ...l63, 0, 0, 1, 0, 1];
      let prev = 12;
      for (let i = 1; i < k; i++) {
        const at = bytes.length;
        bytes.push(...l63, 0xc0 | (prev >> 8), prev & 0xff, 0, 1, 0, 1);
        prev = at;
      }
      return Buffer.from(bytes);
    };
    assert.equal(decodeMessage(build(3)).questions[2]!.name.length, 63 * 3 + 2);
    const e = decodeError(build(4));
    assert.equal(e.field, 'questions[3].name');
    assert.match(e.reason, /longer than 255 octets/);
  });

  test('rdata rules: A is 4 octets, AAAA 16, names fill PTR rdata, NSEC windows ascend with lengths 1-32', () => {
    const record = (type: number, rdata: number[]): Buffer => Buffer.from([...header(0, 1), 0, type >> 8, type & 0xff, 0, 1, 0, 0, 0, 0, rdata.length >> 8, rdata.length & 0xff, ...rdata]);
    assert.match(decodeError(record(1, [1, 2, 3])).reason, /A rdata must be 4 octets, rdlength is 3/);
    assert.match(decodeError(record(28, new Array(15).fill(0))).reason, /AAAA rdata must be 16 octets/);
    assert.match(decodeError(record(12, [0, 0])).reason, /1 octets after the name/);
    assert.match(decodeError(record(12, [5, 0x61])).reason, /runs past the end of the rdata/);
    assert.match(decodeError(record(47, [0, 1, 1, 0x40, 0, 1, 0x40])).reason, /window 0 after window 1: windows must ascend/);
    assert.match(decodeError(record(47, [0, 0, 1, 0x40, 0, 1, 0x40])).reason, /window 0 after window 0/);
    assert.match(decodeError(record(47, [0, 0, 33, ...new Array(33).fill(0)])).reason, /length 33 outside 1-32/);
    assert.match(decodeError(record(47, [0, 0, 4, 0x40])).reason, /truncated NSEC type bitmap/);
    assert.match(decodeError(record(47, [0, 0])).reason, /window header cut off/);
    assert.match(decodeError(record(33, [0, 0, 0, 0, 0])).reason, /5-octet|6-octet/);
    assert.deepEqual(decodeMessage(record(47, [0, 0, 1, 0x40, 1, 1, 0x80])).answers[0]!.data, { kind: 'nsec', next: '', types: [1, 256] });
    for (const e of [decodeError(record(1, [1]))]) assert.equal(e.field, 'answers[0].rdata');
  });

  test('header counts far beyond the data fail at once, allocating nothing per count', () => {
    const t0 = process.hrtime.bigint();
    const e = decodeError(Buffer.from(header(65535)));
    assert.equal(e.field, 'header');
    assert.match(e.reason, /65535 questions.*need at least 327687 octets, the message has 12/);
    const big = Buffer.concat([Buffer.from(header(1, 65535, 65535, 65535)), load('avahi-query-a').subarray(12), Buffer.alloc(9000)]);
    assert.equal(decodeError(big).field, 'header');
    // counts that fit the size but not the content: stops at the first record that is not there
    const lying = Buffer.concat([Buffer.from(header(0, 800)), Buffer.alloc(8988, 0xff)]);
    assert.equal(decodeError(lying).field, 'answers[0].name');
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.ok(ms < 50, `${ms} ms`); // measured 0.01-0.2 ms; 50 leaves room for a loaded machine
  });

  test('a 9000-octet message decodes, and so does the worst case of names through pointers', () => {
    // normal: many records, as encodeMessage writes them
    const m: Message = { ...empty(), flags: FLAG_QR | FLAG_AA };
    for (let i = 0; m.answers.length < 400; i++) {
      m.answers.push(rr(`svc-${i}._http._tcp.local`, TYPE.TXT, { kind: 'raw', bytes: Uint8Array.from([7, ...Buffer.from(`k=${String(i).padStart(5, '0')}`)]) }, true));
    }
    let wire = encodeMessage(m);
    while (wire.length > 9000) {
      m.answers.pop();
      wire = encodeMessage(m);
    }
    assert.ok(wire.length > 8900, `${wire.length} octets`);
    assert.deepEqual(decodeMessage(wire), m);
    // worst case: a 255-octet name, then as many questions as fit, each a pointer to its last label
    // run (1 jump, 254 octets to read); decoding cost is bounded by octets x 255 / 6
    const long = Array.from({ length: 127 }, () => label('a')).flat();
    const bytes = [...long, 0, 0, 1, 0, 1];
    while (bytes.length + 12 + 6 <= 9000) bytes.push(0xc0, 12, 0, 1, 0, 1);
    const count = (bytes.length - long.length - 5) / 6 + 1;
    const packet = Buffer.from([...header(count), ...bytes]);
    assert.ok(packet.length > 8990 && packet.length <= 9000, `${packet.length} octets`);
    const t0 = process.hrtime.bigint();
    const d = decodeMessage(packet);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.equal(d.questions.length, count);
    assert.equal(d.questions[count - 1]!.name.length, 253);
    assert.ok(ms < 500, `${ms} ms for ${count} questions`); // measured 8-65 ms here (1455 questions; slow ones before the JIT)
  });
});

describe('fuzz', () => {
  test('20,000 seeded mutations of the captures: only DnsDecodeError; whatever decodes re-encodes and re-decodes the same', () => {
    const rand = prng(0x6d646e73);
    const seeds = FIXTURE_NAMES.map(load);
    const pick = (n: number): number => Math.floor(rand() * n);
    const special = [0x00, 0x01, 0x3f, 0x40, 0x80, 0xc0, 0xc0, 0xff, 0x0c, 0x2f, 0x21];
    const stats = { decoded: 0, refused: 0, iterations: 20_000 };
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < stats.iterations; i++) {
      let b = Buffer.from(seeds[pick(seeds.length)]!);
      for (let k = 1 + pick(4); k > 0; k--) {
        const op = pick(6);
        const at = pick(b.length + 1);
        if (op === 0 && b.length > 0) b[at % b.length]! ^= 1 << pick(8);
        else if (op === 1) b = Buffer.concat([b.subarray(0, at), Buffer.from([pick(256)]), b.subarray(at)]);
        else if (op === 2 && b.length > 0) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        else if (op === 3) b = b.subarray(0, at);
        else if (op === 4 && b.length > 0) b[at % b.length] = special[pick(special.length)]!;
        else if (b.length > 12) b[4 + pick(8)] = pick(4); // header counts
      }
      let m: Message;
      try {
        m = decodeMessage(b);
      } catch (e) {
        if (!(e instanceof DnsDecodeError)) throw new Error(`iteration ${i}: ${String(e)} for ${b.toString('hex')}`);
        stats.refused++;
        continue;
      }
      stats.decoded++;
      // anything decoded is valid for the encoder (names, rdata lengths and counts all came from a wire)
      const again = encodeMessage(m);
      assert.deepEqual(decodeMessage(again), m, `iteration ${i}: ${b.toString('hex')}`);
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(`fuzz: ${stats.iterations} mutations, ${stats.decoded} decoded, ${stats.refused} refused, ${ms.toFixed(0)} ms`);
    assert.ok(stats.decoded > 1000 && stats.refused > 1000, JSON.stringify(stats));
    assert.ok(ms < 3000, `${ms} ms`); // measured 300-840 ms on this 2-core machine at load average 3.7
  });
});
