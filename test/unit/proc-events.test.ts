import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeProcEvents,
  encodeProcSubscription,
  ProcEventDecodeError,
  ProcEventWhat,
  type ProcEvent,
} from '../../src/netns/proc-events.js';
import { loadProcFixtures, metaNumber, type ProcFixture } from '../fixtures/proc-events/load.js';
import { prng } from '../helpers/prng.js';

const FIXTURES = loadProcFixtures();
const KERNELS = [...new Set(FIXTURES.map((f) => f.kernel))];
const received = FIXTURES.filter((f) => !f.name.startsWith('request-'));

function fixture(kernel: string, name: string): ProcFixture {
  const f = FIXTURES.find((x) => x.kernel === kernel && x.name === name);
  if (!f) throw new Error(`no fixture ${kernel}/${name}`);
  return f;
}

function refusal(buf: Uint8Array): ProcEventDecodeError {
  try {
    decodeProcEvents(buf);
  } catch (e) {
    if (e instanceof ProcEventDecodeError) return e;
    throw e;
  }
  throw new Error(`decoded: ${Buffer.from(buf).toString('hex')}`);
}

const SIGCHLD = 17;

test('captures from both kernels are present', () => {
  assert.deepEqual(KERNELS, ['linux-6.1', 'linux-6.18']);
  for (const k of KERNELS) assert.ok(FIXTURES.filter((f) => f.kernel === k).length >= 11, k);
});

for (const kernel of KERNELS) {
  describe(`captures of ${kernel}`, () => {
    const one = (name: string): ProcEvent => {
      const events = decodeProcEvents(fixture(kernel, name).data);
      assert.equal(events.length, 1);
      return events[0]!;
    };

    test('fork: parent and child as fork() and getpid() saw them', () => {
      const f = fixture(kernel, 'fork');
      const [parent, child] = [metaNumber(f, 'parent'), metaNumber(f, 'child')];
      assert.deepEqual(one('fork'), { kind: 'fork', parentPid: parent, parentTgid: parent, childPid: child, childTgid: child });
    });

    test('exec of the child', () => {
      const pid = metaNumber(fixture(kernel, 'exec'), 'pid');
      assert.deepEqual(one('exec'), { kind: 'exec', pid, tgid: pid });
    });

    test('exit: exitCode is the wait status waitpid() returned, exitSignal SIGCHLD, parent set', () => {
      for (const name of ['exit', 'exit-killed']) {
        const f = fixture(kernel, name);
        const [pid, parent] = [metaNumber(f, 'pid'), metaNumber(f, 'parent')];
        assert.deepEqual(one(name), { kind: 'exit', pid, tgid: pid, exitCode: metaNumber(f, 'status'), exitSignal: SIGCHLD, parentPid: parent, parentTgid: parent }, name);
      }
      assert.equal((one('exit') as { exitCode: number }).exitCode, 0x300);
      assert.equal((one('exit-killed') as { exitCode: number }).exitCode, 9);
    });

    test("a thread: a fork whose childPid is the thread's, naming the process's parent; its exit has exitSignal -1", () => {
      const f = fixture(kernel, 'fork-thread');
      const [ppid, tid, tgid] = [metaNumber(f, 'ppid'), metaNumber(f, 'tid'), metaNumber(f, 'tgid')];
      assert.notEqual(tid, tgid);
      assert.deepEqual(one('fork-thread'), { kind: 'fork', parentPid: ppid, parentTgid: ppid, childPid: tid, childTgid: tgid });
      const e = one('exit-thread');
      assert.equal(e.kind, 'exit');
      assert.deepEqual([e.pid, e.tgid, e.exitCode, e.exitSignal], [tid, tgid, 0, -1]);
    });

    test('uid, gid, sid and comm are "other" with their what', () => {
      assert.deepEqual(one('uid'), { kind: 'other', what: ProcEventWhat.uid });
      assert.deepEqual(one('gid'), { kind: 'other', what: ProcEventWhat.gid });
      assert.deepEqual(one('sid'), { kind: 'other', what: ProcEventWhat.sid });
      assert.deepEqual(one('comm'), { kind: 'other', what: ProcEventWhat.comm });
    });

    test('the ack of our LISTEN: our ack + 1, err 0 (seq is not echoed)', () => {
      const f = fixture(kernel, 'ack-listen');
      assert.deepEqual(one('ack-listen'), { kind: 'ack', ack: metaNumber(f, 'ack'), err: 0 });
    });

    test('encodeProcSubscription builds the LISTEN request capture.py sent', () => {
      const f = fixture(kernel, 'request-listen');
      const req = { seq: metaNumber(f, 'seq'), ack: metaNumber(f, 'ack'), portId: metaNumber(f, 'port') };
      assert.equal(encodeProcSubscription('listen', req).toString('hex'), f.data.toString('hex'));
      const ignore = encodeProcSubscription('ignore', req);
      assert.equal(ignore.length, f.data.length);
      assert.equal(ignore.readUInt32LE(36), 2); // PROC_CN_MCAST_IGNORE; the rest as LISTEN's
      assert.equal(ignore.subarray(0, 36).toString('hex'), f.data.subarray(0, 36).toString('hex'));
    });

    test('every event is 76 bytes: cn_msg.len 40 whatever the kind', () => {
      for (const f of received.filter((x) => x.kernel === kernel)) {
        assert.equal(f.data.length, 76, f.name);
        assert.equal(f.data.readUInt16LE(32), 40, f.name);
      }
    });
  });
}

describe('refusals', () => {
  const fork = fixture('linux-6.18', 'fork').data;
  const patched = (write: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(fork);
    write(b);
    return b;
  };

  test('two events in one datagram decode in order', () => {
    const exec = fixture('linux-6.18', 'exec').data;
    assert.deepEqual(decodeProcEvents(Buffer.concat([fork, exec])).map((e) => e.kind), ['fork', 'exec']);
  });

  test('empty, short, and over-long headers', () => {
    assert.match(refusal(Buffer.alloc(0)).message, /empty datagram/);
    assert.match(refusal(fork.subarray(0, 15)).message, /cannot hold a netlink header/);
    assert.match(refusal(patched((b) => b.writeUInt32LE(35, 0))).message, /nlmsg_len 35 cannot hold a cn_msg/);
    assert.match(refusal(patched((b) => b.writeUInt32LE(80, 0))).message, /nlmsg_len 80 exceeds the 76 bytes left/);
    assert.match(refusal(Buffer.concat([fork, Buffer.alloc(8)])).message, /8 bytes cannot hold a netlink header \(at byte 76\)/);
  });

  test('cn_msg.len must agree with nlmsg_len and be long enough for its kind', () => {
    assert.match(refusal(patched((b) => b.writeUInt16LE(44, 32))).message, /cn_msg.len 44 disagrees with nlmsg_len \(40 bytes of data\)/);
    // A fork cut to 24 bytes of event, consistently in both lengths.
    const short = Buffer.from(fork.subarray(0, 60));
    short.writeUInt32LE(60, 0);
    short.writeUInt16LE(24, 32);
    assert.match(refusal(short).message, /too short for a fork event \(32\)/);
    // The same 24 bytes are enough for an exec.
    short.writeUInt32LE(ProcEventWhat.exec, 36);
    assert.equal(decodeProcEvents(short)[0]!.kind, 'exec');
    short.writeUInt16LE(12, 32);
    short.writeUInt32LE(48, 0);
    assert.match(refusal(short.subarray(0, 48)).message, /cannot hold a proc_event/);
  });

  test('a longer struct (a future kernel) is accepted', () => {
    const longer = Buffer.concat([fork, Buffer.alloc(8)]);
    longer.writeUInt32LE(84, 0);
    longer.writeUInt16LE(48, 32);
    assert.equal(decodeProcEvents(longer)[0]!.kind, 'fork');
  });

  test('another connector, another message type', () => {
    assert.match(refusal(patched((b) => b.writeUInt32LE(3, 16))).message, /cb_id 3:1 is not the process connector's/);
    assert.match(refusal(patched((b) => b.writeUInt16LE(2, 4))).message, /nlmsg_type 2, not NLMSG_DONE/);
  });

  test('an unknown what is "other"', () => {
    assert.deepEqual(decodeProcEvents(patched((b) => b.writeUInt32LE(0x400, 36))), [{ kind: 'other', what: 0x400 }]);
  });

  test('not bytes at all', () => {
    assert.ok(refusal('x' as unknown as Uint8Array) instanceof ProcEventDecodeError);
  });
});

describe('fuzz', () => {
  test('every truncation of every capture is refused with ProcEventDecodeError', () => {
    let n = 0;
    for (const f of received) {
      for (let len = 0; len < f.data.length; len++) {
        refusal(f.data.subarray(0, len));
        n++;
      }
    }
    assert.ok(n > 1500, String(n));
  });

  test('20,000 seeded mutations of the captures: only ProcEventDecodeError; decoded events are well-typed', () => {
    const rand = prng(0x636e7072);
    const seeds = received.map((f) => f.data);
    const pick = (n: number): number => Math.floor(rand() * n);
    // Lengths and offsets that matter: nlmsg_len, cn_msg.len, what, the union.
    const hot = [0, 1, 2, 3, 4, 5, 16, 20, 32, 33, 36, 37, 38, 39];
    const special = [0x00, 0x01, 0x02, 0x03, 0x10, 0x14, 0x18, 0x20, 0x24, 0x28, 0x40, 0x4c, 0x80, 0xff];
    const stats = { decoded: 0, refused: 0, iterations: 20_000 };
    const kinds = new Set<string>();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < stats.iterations; i++) {
      let b = Buffer.from(seeds[pick(seeds.length)]!);
      for (let k = 1 + pick(3); k > 0; k--) {
        const op = pick(7);
        const at = pick(b.length + 1);
        if (op === 0 && b.length > 0) b[at % b.length]! ^= 1 << pick(8);
        else if (op === 1) b = Buffer.concat([b.subarray(0, at), Buffer.from([pick(256)]), b.subarray(at)]);
        else if (op === 2 && b.length > 0) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        else if (op === 3) b = b.subarray(0, at);
        else if (op === 4 && b.length > 0) b[at % b.length] = special[pick(special.length)]!;
        else if (op === 5) b = Buffer.concat([b, seeds[pick(seeds.length)]!.subarray(0, pick(80))]);
        else {
          const h = hot[pick(hot.length)]!;
          if (h < b.length) b[h] = special[pick(special.length)]!;
        }
      }
      let events: ProcEvent[];
      try {
        events = decodeProcEvents(b);
      } catch (e) {
        if (!(e instanceof ProcEventDecodeError)) throw new Error(`iteration ${i}: ${String(e)} for ${b.toString('hex')}`);
        stats.refused++;
        continue;
      }
      stats.decoded++;
      assert.ok(events.length >= 1, `iteration ${i}`);
      for (const e of events) {
        kinds.add(e.kind);
        for (const [k, v] of Object.entries(e)) {
          if (k !== 'kind') assert.ok(Number.isInteger(v), `iteration ${i}: ${k}=${String(v)}`);
        }
      }
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(`fuzz: ${stats.iterations} mutations, ${stats.decoded} decoded, ${stats.refused} refused, kinds ${[...kinds].sort().join(' ')}, ${ms.toFixed(0)} ms`);
    assert.ok(stats.decoded > 1000 && stats.refused > 1000, JSON.stringify(stats));
    assert.deepEqual([...kinds].sort(), ['ack', 'exec', 'exit', 'fork', 'other']);
    assert.ok(ms < 3000, `${ms} ms`);
  });
});
