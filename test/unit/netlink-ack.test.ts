import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeMessages,
  DumpInterruptedError,
  encodeMessage,
  HeaderFlag,
  NetlinkError,
  parseDone,
  parseError,
  ReplyCollector,
} from '../../src/netns/netlink/index.js';
import { loadFixture, request } from '../fixtures/netlink/load.js';

function firstMessage(b: Buffer) {
  const m = decodeMessages(b)[0];
  assert.ok(m);
  return m;
}

describe('NLMSG_ERROR and NLMSG_DONE from real kernel replies', () => {
  test('an error that echoes the whole request (iproute2 sets EXT_ACK but not CAP_ACK)', () => {
    const f = loadFixture('error-mtu-extack');
    const m = firstMessage(f.received[0]!);
    assert.equal(m.header.flags & HeaderFlag.capped, 0);
    assert.ok(m.header.flags & HeaderFlag.ackTlvs);
    const ack = parseError(m);
    assert.equal(ack.errno, 22);
    assert.equal(ack.extack, 'mtu greater than device maximum');
    assert.equal(ack.offset, undefined);
    assert.equal(ack.request?.length, request(f).length);
    assert.equal(ack.request?.type, 16);
  });

  test('a capped error with a message and the offending attribute offset (CAP_ACK + EXT_ACK)', () => {
    const f = loadFixture('error-policy-offs');
    const m = firstMessage(f.received[0]!);
    assert.ok(m.header.flags & HeaderFlag.capped);
    const ack = parseError(m);
    assert.equal(ack.errno, 34); // ERANGE: IFLA_IFNAME longer than its policy allows
    assert.equal(ack.extack, 'Attribute failed policy validation');
    assert.equal(ack.offset, 32);
    // The offset counts from the request's nlmsghdr: it points at the IFLA_IFNAME header.
    const req = request(f);
    assert.equal(req.readUInt16LE(ack.offset! + 2), 3);
    const err = new NetlinkError({ op: 'createLink(x)', errno: ack.errno, seq: 1, extack: ack.extack, offset: ack.offset });
    assert.equal(err.code, 'ERANGE');
    assert.match(err.message, /^createLink\(x\): ERANGE .*: Attribute failed policy validation \(at byte 32\)$/);
  });

  test('NLMSG_DONE carrying an error and an extended ack (dump with an unknown target nsid)', () => {
    const f = loadFixture('link-dump-bad-target-nsid');
    const m = firstMessage(f.received[0]!);
    assert.equal(m.header.type, 3);
    const done = parseDone(m);
    assert.equal(done.errno, 22);
    assert.equal(done.extack, 'Invalid target network namespace id');
  });

  test('kinds this kernel lacks: EOPNOTSUPP with "Unknown device type"', () => {
    for (const name of ['link-new-ipvlan-l2-bridge', 'link-new-ipvtap-l3s-private']) {
      const ack = parseError(firstMessage(loadFixture(name).received[0]!));
      assert.equal(ack.errno, 95, name);
      assert.equal(ack.extack, 'Unknown device type', name);
    }
  });

  test('IFLA_AF_SPEC at creation: EAFNOSUPPORT without a message', () => {
    const ack = parseError(firstMessage(loadFixture('link-new-macvlan-addrgenmode').received[0]!));
    assert.equal(ack.errno, 97);
    assert.equal(ack.extack, undefined);
  });

  test('a success ack is always capped', () => {
    const m = firstMessage(loadFixture('link-new-macvlan-bridge').received[0]!);
    assert.ok(m.header.flags & HeaderFlag.capped);
    assert.equal(parseError(m).errno, 0);
  });

  test('NetlinkError maps errno to the kernel name', () => {
    assert.equal(new NetlinkError({ op: 'x', errno: 95, seq: 1 }).code, 'EOPNOTSUPP');
    assert.equal(new NetlinkError({ op: 'x', errno: 19, seq: 1 }).code, 'ENODEV');
    assert.equal(new NetlinkError({ op: 'x', errno: 11, seq: 1 }).code, 'EAGAIN');
  });
});

/** Rewrites every message's flags in a datagram (for DUMP_INTR tests). */
function withFlags(b: Buffer, fn: (type: number, flags: number) => number): Buffer {
  const c = Buffer.from(b);
  for (const m of decodeMessages(c)) c.writeUInt16LE(fn(m.header.type, m.header.flags), m.offset + 6);
  return c;
}

describe('ReplyCollector', () => {
  const dump = loadFixture('link-dump');
  const req = decodeMessages(request(dump))[0]!.header;
  const replyPid = decodeMessages(dump.received[0]!)[0]!.header.pid;

  test('collects a real link dump up to NLMSG_DONE', () => {
    const c = new ReplyCollector('dumpLinks', req.seq, replyPid, 'dump');
    const results = dump.received.map((d) => c.feed(d, 0));
    assert.deepEqual(results, [...results.slice(0, -1).map(() => false), true]);
    assert.ok(c.messages.length >= 4);
    assert.ok(c.messages.every((m) => m.header.type === 16 && (m.header.flags & HeaderFlag.multi) !== 0));
  });

  test('drops datagrams from other senders, other sequence numbers and other port ids', () => {
    const c = new ReplyCollector('dumpLinks', req.seq, replyPid, 'dump');
    assert.equal(c.feed(dump.received[0]!, 4242), false);
    assert.equal(c.messages.length, 0);
    const other = new ReplyCollector('dumpLinks', req.seq + 1, replyPid, 'dump');
    for (const d of dump.received) assert.equal(other.feed(d, 0), false);
    const wrongPort = new ReplyCollector('dumpLinks', req.seq, replyPid + 1, 'dump');
    for (const d of dump.received) assert.equal(wrongPort.feed(d, 0), false);
    assert.equal(other.messages.length + wrongPort.messages.length, 0);
    assert.ok(other.dropped > 0);
  });

  test('NLM_F_DUMP_INTR is kept until NLMSG_DONE, then DumpInterruptedError', () => {
    const c = new ReplyCollector('dumpLinks', req.seq, replyPid, 'dump');
    const flagged = dump.received.map((d, i) => (i === 0 ? withFlags(d, (_t, f) => f | HeaderFlag.dumpIntr) : d));
    for (const d of flagged.slice(0, -1)) assert.equal(c.feed(d, 0), false);
    assert.throws(() => c.feed(flagged[flagged.length - 1]!, 0), DumpInterruptedError);
  });

  test('an NLMSG_ERROR ends an exchange with NetlinkError carrying the extack', () => {
    const f = loadFixture('error-mtu-extack');
    const h = decodeMessages(f.received[0]!)[0]!.header;
    const c = new ReplyCollector('setLink(up0)', h.seq, h.pid, 'ack');
    assert.throws(() => c.feed(f.received[0]!, 0), (e: unknown) => e instanceof NetlinkError && e.code === 'EINVAL' && e.extack === 'mtu greater than device maximum' && e.seq === h.seq);
  });

  test("'object' ends at the first reply, 'ack' at the ack", () => {
    const f = loadFixture('link-get-target-nsid');
    const h = decodeMessages(f.received[0]!)[0]!.header;
    const obj = new ReplyCollector('getLink', h.seq, h.pid, 'object');
    assert.equal(obj.feed(f.received[0]!, 0), true);
    assert.equal(obj.messages.length, 1);
    const ack = new ReplyCollector('getLink', h.seq, h.pid, 'ack');
    assert.equal(ack.feed(f.received[0]!, 0), false);
    assert.equal(ack.feed(f.received[1]!, 0), true);
  });

  test('NLMSG_NOOP is skipped and NLMSG_OVERRUN is an error', () => {
    const noop = encodeMessage({ type: 1, flags: 0, body: Buffer.alloc(0) }, 5, 9);
    const c = new ReplyCollector('x', 5, 9, 'ack');
    assert.equal(c.feed(noop, 0), false);
    const overrun = encodeMessage({ type: 4, flags: 0, body: Buffer.alloc(0) }, 5, 9);
    assert.throws(() => c.feed(overrun, 0), (e: unknown) => e instanceof NetlinkError && e.code === 'ENOBUFS');
  });
});
