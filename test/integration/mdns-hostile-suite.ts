/**
 * ontap-zone --mdns against a hostile link: the setup of mdns-avahi-suite.ts (ontapd, ontap-zone
 * --mdns in "host", a workload `web` from `ontap -n web`: macvlan on the host, ipvlan L2 in the VM
 * guest), and from the other side of the
 * uplink ("wire", peer0) Python sends what no honest peer sends: fuzzed and truncated packets,
 * compression-pointer loops, 9 KB and 60 KB datagrams, thousands of questions, queries from off
 * the link, and 10,000 queries in a second. ontap-zone must keep serving, stay silent to the
 * off-link source, keep its replies within RFC 6762's multicast limit and its own unicast budget,
 * and come back to idle with the memory it had.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CLASS_IN, FLAG_AA, FLAG_QR, TYPE, encodeMessage, type Message } from '../../src/mdns/dns.js';
import { TestNamespaces, eventually, ip, sweepStaleNamespaces } from '../helpers/netns.js';
import { TestDaemon } from '../helpers/ontapd.js';
import { startAddressedWorkload } from '../helpers/workload.js';
import { TestZone } from '../helpers/zone.js';
import { blast, blastAsync, cpuMs, listen, rssKiB, type BlastJob } from '../helpers/mdns-wire.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';
import { prng } from '../helpers/prng.js';

const NET = '10.205.0';
const PEER = `${NET}.1`;
const WEB = `${NET}.5`;
/** A second address of peer0 outside the workload's prefix: the off-link source. */
const OFF_NET = '10.206.0';
const OFF = `${OFF_NET}.1`;
const GROUP = '224.0.0.251';
/**
 * How long the wire's sender may take to send the flood's 10,000 queries (paced at 10,000 a
 * second): on the host 1.0 s is seen, so 1.5 s. In the VM guest the sender is Python under TCG, on
 * the same two vCPUs as the ontap-zone it floods: 1.01-1.38 s seen on an idle host (four floods),
 * 1.29 s and 3.66 s beside a second guest (host load 4), so 6 s there: still 1,700 queries a second, 80 times
 * ontap-zone's unicast budget. The reply bounds follow the time the sender took.
 */
const FLOOD_SEND_BOUND_S = process.env.ONTAP_IN_VM === '1' ? 6 : 1.5;
/**
 * On the host ontap-zone reads the flood as it comes: its socket has nothing queued when the sender
 * returns (a second after its last send) and the kernel drops nothing. In the VM guest it cannot
 * keep up under TCG (CPU time = wall time): the kernel drops nine in ten of the flood at its
 * socket (8,566-9,698 of 10,000 in 30 floods), and the queue is full when the sender stops; once
 * 44,544 octets were still queued 604 ms after the sender returned, and ontap-zone answered 4
 * times by multicast over the sending's 1.94 s. There, after each flood, the test waits until
 * ontap-zone has read everything its sockets hold (0-0.27 s seen), and judges the multicast rate
 * over the time it was answering: the sending, the sender's second and that wait. Idle is measured
 * from then on.
 */
const DRAIN_AFTER_FLOOD = process.env.ONTAP_IN_VM === '1';

/** Octets queued and datagrams dropped on UDP port 5353 sockets in the network namespaces of these processes. */
function mdnsSockets(pids: number[]): { queued: number; drops: number } {
  let queued = 0;
  let drops = 0;
  for (const pid of pids) {
    for (const line of readFileSync(`/proc/${pid}/net/udp`, 'utf8').split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
      const f = line.trim().split(/\s+/);
      if (!f[1]?.endsWith(':14E9')) continue;
      queued += parseInt(f[4]!.split(':')[1]!, 16);
      drops += Number(f[12]);
    }
  }
  return { queued, drops };
}

const query = (name: string, type: number, id = 0, unicastResponse = false): Buffer =>
  encodeMessage({ id, flags: 0, questions: [{ name, type, class: CLASS_IN, unicastResponse }], answers: [], authorities: [], additionals: [] });

/** Header with these counts, then `body`. */
function raw(counts: [number, number, number, number], body: number[] | Buffer, flags = 0): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(flags, 2);
  counts.forEach((c, i) => h.writeUInt16BE(c, 4 + 2 * i));
  return Buffer.concat([h, Buffer.from(body)]);
}

/** `n` questions in one message: the first names `name`, the rest point at it (6 octets each). */
function manyQuestions(n: number, name: string, type: number): Buffer {
  const first = encodeMessage({ id: 0, flags: 0, questions: [{ name, type, class: CLASS_IN, unicastResponse: false }], answers: [], authorities: [], additionals: [] });
  const rest = Buffer.alloc(6 * (n - 1));
  for (let i = 0; i < n - 1; i++) {
    rest.writeUInt16BE(0xc00c, 6 * i);
    rest.writeUInt16BE(type, 6 * i + 2);
    rest.writeUInt16BE(CLASS_IN, 6 * i + 4);
  }
  const m = Buffer.concat([first, rest]);
  m.writeUInt16BE(n, 4);
  return m;
}

/** `n` distinct names not ours (q0.nothere.local, ...), each a label and a pointer. */
function manyForeignQuestions(n: number): Buffer {
  const parts: Buffer[] = [];
  const first = encodeMessage({ id: 0, flags: 0, questions: [{ name: 'nothere.local', type: TYPE.A, class: CLASS_IN, unicastResponse: false }], answers: [], authorities: [], additionals: [] });
  parts.push(first);
  for (let i = 1; i < n; i++) {
    const label = Buffer.from(`q${i}`);
    const q = Buffer.alloc(1 + label.length + 2 + 4);
    q[0] = label.length;
    label.copy(q, 1);
    q.writeUInt16BE(0xc00c, 1 + label.length);
    q.writeUInt16BE(TYPE.A, 3 + label.length);
    q.writeUInt16BE(CLASS_IN, 5 + label.length);
    parts.push(q);
  }
  const m = Buffer.concat(parts);
  m.writeUInt16BE(n, 4);
  return m;
}

/** Bases for mutation: a query for our name, a probe, a response for another name (flips must not forge ours). */
function fuzzBases(): Buffer[] {
  const other: Message = {
    id: 0, flags: FLAG_QR | FLAG_AA, questions: [],
    answers: [
      { name: 'zzqx.local', type: TYPE.A, class: CLASS_IN, cacheFlush: true, ttl: 120, data: { kind: 'a', address: '10.205.0.77' } },
      { name: '77.0.205.10.in-addr.arpa', type: TYPE.PTR, class: CLASS_IN, cacheFlush: true, ttl: 120, data: { kind: 'ptr', target: 'zzqx.local' } },
    ],
    authorities: [], additionals: [],
  };
  return [query('web.local', TYPE.A), query('web.local', TYPE.ANY, 7, true), query(`5.0.205.10.in-addr.arpa`, TYPE.PTR), encodeMessage(other)];
}

/** Mutants of the bases: byte flips, truncations, random tails, count fields rewritten. */
function fuzzed(count: number, seed: number): Buffer[] {
  const rnd = prng(seed);
  const bases = fuzzBases();
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const b = Buffer.from(bases[Math.floor(rnd() * bases.length)]!);
    switch (i % 4) {
      case 0: // flips
        for (let k = 1 + Math.floor(rnd() * 4); k > 0; k--) {
          const at = Math.floor(rnd() * b.length);
          b[at] = b[at]! ^ (1 << Math.floor(rnd() * 8));
        }
        out.push(b);
        break;
      case 1: // truncated
        out.push(b.subarray(0, Math.floor(rnd() * b.length)));
        break;
      case 2: { // a random tail after a prefix
        const cut = Math.floor(rnd() * b.length);
        const tail = Buffer.alloc(Math.floor(rnd() * 64));
        for (let k = 0; k < tail.length; k++) tail[k] = Math.floor(rnd() * 256);
        out.push(Buffer.concat([b.subarray(0, cut), tail]));
        break;
      }
      default: // counts say more (or less) than there is
        b.writeUInt16BE(Math.floor(rnd() * 65536), 4 + 2 * Math.floor(rnd() * 4));
        out.push(b);
    }
  }
  return out;
}

/** Compression pointers that loop, point forward, into the header, or chain past any limit. */
function pointerLoops(): Buffer[] {
  // 300 questions, each naming the one before by a pointer: question k's name takes k jumps.
  const chain: number[] = [1, 0x61, 0, 0, 1, 0, 1];
  for (let k = 1, at = 12; k < 300; k++, at = 12 + chain.length - 6) chain.push(0xc0 | (at >> 8), at & 0xff, 0, 1, 0, 1);
  return [
    raw([1, 0, 0, 0], [0xc0, 12, 0, 1, 0, 1]), // the name is a pointer to itself
    raw([1, 0, 0, 0], [0xc0, 14, 0xc0, 12, 0, 1, 0, 1]), // two pointers to each other
    raw([1, 0, 0, 0], [3, 0x77, 0x65, 0x62, 0xc0, 12, 0, 1, 0, 1]), // a label then back to itself
    raw([1, 0, 0, 0], [0xc0, 2, 0, 1, 0, 1]), // into the header
    raw([1, 0, 0, 0], [0xc0, 200, 0, 1, 0, 1]), // past the end
    raw([0, 1, 0, 0], [0, 0, 12, 0, 1, 0, 0, 0, 120, 0, 2, 0xc0, 23], FLAG_QR), // a PTR whose rdata points at itself
    raw([300, 0, 0, 0], chain),
  ];
}

export function mdnsHostileSuite(kind: 'macvlan' | 'ipvlan'): void {
const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('python3'), 'needs iproute2 and python3'],
  [() => kernelHasKind(kind), `this kernel cannot create ${kind} devices${kind === 'ipvlan' ? ' (run it in the VM: npm run vm -- FILE)' : ''}`],
]);

describeWhen(`ontap-zone --mdns against a hostile link (${kind})`, reason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let wire = '';
  let work = '';
  let daemon: TestDaemon | undefined;
  let zone: TestZone | undefined;
  let holder: ChildProcess | undefined;
  let ifname = '';
  const children: ChildProcess[] = [];

  /** A legacy query for web.local A from PEER: the normal query that must still be answered. */
  function answersNormally(): void {
    const r = blast(wire, { sockets: [{ src: PEER, port: 0, ttl: 255 }], packets: [query('web.local', TYPE.A, 0x1234)], sends: [[0, GROUP, 0]], wait: 2 });
    const replies = r.replies.filter((x) => x[4] === 0x1234 && x[5] === 1);
    assert.equal(replies.length, 1, `no answer to a normal query: ${JSON.stringify(r)}\n${zone!.log.slice(-2000)}`);
    assert.equal(replies[0]![1], WEB);
  }

  function assertRunning(): void {
    assert.equal(zone!.pid > 0 && zone!.log.includes('event=serving'), true);
    assert.doesNotThrow(() => rssKiB(zone!.pid), 'ontap-zone is gone');
    assert.doesNotMatch(zone!.log, /event=(uncaught|internal-error|fatal)/);
  }

  /** ms of CPU ontap-zone spends over `ms` of wall time. */
  async function cpuOver(ms: number): Promise<number> {
    const c0 = cpuMs(zone!.pid);
    await new Promise((r) => setTimeout(r, ms));
    return cpuMs(zone!.pid) - c0;
  }

  before(async () => {
    sweepStaleNamespaces();
    ({ host, wire } = nets.uplink());
    work = nets.add('work');
    ip('-n', wire, 'addr', 'add', `${PEER}/24`, 'dev', 'peer0');
    ip('-n', wire, 'addr', 'add', `${OFF}/24`, 'dev', 'peer0');
    daemon = new TestDaemon(host, ['up0'], ['--family', kind]);
    await daemon.start();
    zone = new TestZone(host, ['--domain', 'hostile.test', '--mdns']);
    await zone.start();
    ({ holder, ifname } = await startAddressedWorkload(work, kind, 'web', daemon.socket(), `${WEB}/24`));
    // A route back to the off-link network: a reply to it could leave, so silence is the source check's.
    ip('-n', work, 'route', 'add', `${OFF_NET}.0/24`, 'dev', ifname);
    await eventually('the responder established web.local', () => /event=mdns-established .*mdns=web\.local/.test(zone!.log), 5000)
      .catch((e: Error) => assert.fail(`${e.message}\n${zone!.log.slice(-3000)}`));
    // Past the announcements (two, one second apart), so that the multicast limit starts clean.
    await new Promise((r) => setTimeout(r, 1500));
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    holder?.kill('SIGKILL');
    await zone?.stop();
    await daemon?.stop();
    zone?.removeDir();
    daemon?.removeDir();
    nets.destroy();
  });

  test('fuzzed, truncated and pointer-loop packets, to the group and to the workload, are dropped; it still answers; one undecodable line per 10 s', () => {
    const started = Date.now();
    const packets = [...fuzzed(3000, 11), ...pointerLoops()];
    const job: BlastJob = {
      sockets: [{ src: PEER, port: 5353, ttl: 255 }, { src: PEER, port: 0, ttl: 255 }],
      packets,
      sends: packets.flatMap((_, i): Array<[number, string, number]> => [[i % 2, GROUP, i], [(i + 1) % 2, WEB, i]]),
      rate: 4000,
      wait: 0.5,
    };
    const r = blast(wire, job);
    assert.equal(r.failed, 0);
    assertRunning();
    answersNormally();
    const lines = zone!.log.match(/event=mdns-undecodable /g)?.length ?? 0;
    const seconds = (Date.now() - started) / 1000;
    assert.ok(lines >= 1 && lines <= 1 + Math.ceil(seconds / 10), `${lines} undecodable lines in ${seconds.toFixed(1)} s`);
    const count = Number([...zone!.log.matchAll(/event=mdns-undecodable .*count=(\d+)/g)].at(-1)?.[1]);
    assert.ok(count >= 1, 'the line counts the dropped packets');
  });

  test('9 KB packets, 60 KB packets (not read), and thousands of questions, ours and not ours: dropped or answered once, bounded', () => {
    const garbage = Buffer.alloc(9000);
    const rnd = prng(5);
    for (let i = 0; i < garbage.length; i++) garbage[i] = Math.floor(rnd() * 256);
    const ours = manyQuestions(1496, 'web.local', TYPE.A); // 8997 octets: about the most that fit in 9000
    const foreign = manyForeignQuestions(800);
    const huge = manyQuestions(10000, 'web.local', TYPE.A); // 60 KB: over 9000, never decoded
    const rootOnly = raw([1797, 0, 0, 0], Array.from({ length: 1797 * 5 }, (_, i) => (i % 5 === 2 || i % 5 === 4 ? 1 : 0))); // 1797 questions for the root
    for (const p of [ours, foreign, rootOnly]) assert.ok(p.length <= 9000, `${p.length}`);
    const packets = [garbage, ours, foreign, huge, rootOnly];
    const r = blast(wire, {
      sockets: [{ src: PEER, port: 0, ttl: 255 }],
      packets,
      // Each five times to the group and to the workload, legacy (answered by unicast, if at all).
      sends: Array.from({ length: 10 }, (_, k) => packets.map((_, i): [number, string, number] => [0, k % 2 ? WEB : GROUP, i])).flat(),
      rate: 200,
      wait: 1,
    });
    assert.equal(r.failed, 0);
    assertRunning();
    // Only `ours` asks for our name: at most one reply per such query (10), each a single answer.
    const replies = r.replies;
    assert.ok(replies.length >= 1 && replies.length <= 10, `replies: ${JSON.stringify(replies.map((x) => x.slice(3)))}`);
    for (const [, from, , length, , answers] of replies) {
      assert.equal(from, WEB);
      assert.equal(answers, 1);
      // No amplification: the reply is no longer than the query it answers.
      assert.ok(length <= 1440, `a ${length}-octet reply to a ${ours.length}-octet query`);
    }
    answersNormally();
  });

  test('from an off-link source with TTL 64: no reply at all, by unicast or multicast; the same with TTL 255 is answered (§11)', async () => {
    const packets = [query('web.local', TYPE.A, 0x0ff1), query('web.local', TYPE.A, 0, true), query('web.local', TYPE.AAAA), query('5.0.205.10.in-addr.arpa', TYPE.PTR, 0x0ff2)];
    const heard = await listen(wire, PEER, 3);
    children.push(heard.child);
    const r = blast(wire, {
      sockets: [{ src: OFF, port: 0, ttl: 64 }, { src: OFF, port: 5353, ttl: 64 }],
      packets,
      sends: [[0, GROUP, 0], [0, WEB, 0], [1, GROUP, 1], [1, GROUP, 2], [0, WEB, 3], [0, GROUP, 3], [1, WEB, 1]],
      rate: 50,
      wait: 2,
    });
    const multicast = await heard.done;
    assert.deepEqual(r.replies, [], 'a reply to the off-link source');
    assert.deepEqual(multicast.filter((m) => m.from[0] === WEB), [], 'a multicast reply to the off-link source\'s query');
    // The control: TTL 255 passes §11 from anywhere, and the route lets the reply reach OFF.
    const c = blast(wire, { sockets: [{ src: OFF, port: 0, ttl: 255 }], packets: [query('web.local', TYPE.A, 0x0ff3)], sends: [[0, GROUP, 0]], wait: 2 });
    assert.deepEqual(c.replies.map((x) => [x[1], x[4], x[5]]), [[WEB, 0x0ff3, 1]]);
    answersNormally();
  });

  test('10,000 queries in a second (legacy from 200 ports, QM multicast): replies bounded, CPU back to idle, RSS back', async () => {
    // Legacy queries from many ports, to the group and to the workload; QM queries to the group.
    const legacy = query('web.local', TYPE.A, 0x4242);
    const qm = query('web.local', TYPE.A);
    const ports = 200;
    const sockets = [...Array.from({ length: ports }, () => ({ src: PEER, port: 0, ttl: 255 })), { src: PEER, port: 5353, ttl: 255 }];
    const sends: Array<[number, string, number]> = [];
    for (let i = 0; i < 10000; i++) {
      if (i % 2 === 0) sends.push([ports, GROUP, 1]);
      else sends.push([(i >> 1) % ports, i % 4 === 1 ? GROUP : WEB, 0]);
    }
    // ontap-zone's sockets: in its own namespace ("host") and in the workload's (the holder's).
    const zoneSockets = () => mdnsSockets([zone!.pid, holder!.pid!]);
    const flood = async (): Promise<{ unicast: number; multicast: number; seconds: number; drained: number; answering: number; dropped: number; cpu: number; wall: number }> => {
      const heard = await listen(wire, PEER, 4);
      children.push(heard.child);
      const drops0 = zoneSockets().drops;
      const c0 = cpuMs(zone!.pid);
      const t0 = performance.now();
      const r = await blastAsync(wire, { sockets, packets: [legacy, qm], sends, rate: 10000, wait: 1 });
      const cpu = cpuMs(zone!.pid) - c0;
      const wall = performance.now() - t0;
      let drained = 0;
      if (DRAIN_AFTER_FLOOD) {
        const returned = performance.now();
        await eventually('ontap-zone read what its sockets had queued', () => zoneSockets().queued === 0, 30000);
        drained = (performance.now() - returned) / 1000;
      }
      const dropped = zoneSockets().drops - drops0;
      const multicast = (await heard.done).filter((m) => m.from[0] === WEB && m.answers.some((a) => a.type === TYPE.A && a.data === WEB));
      assert.equal(r.failed, 0);
      // How long ontap-zone may have been answering: while the sender sent (on the host, where it
      // keeps up); in the guest also the sender's last second and the wait for the queue to drain.
      const answering = DRAIN_AFTER_FLOOD ? r.seconds + 1 + drained : r.seconds;
      return { unicast: r.replies.filter((x) => x[4] === 0x4242 && x[5] === 1).length, multicast: multicast.length, seconds: r.seconds, drained, answering, dropped, cpu, wall };
    };
    // A warm-up flood first: the heap grows to what a flood needs once; a second one must not grow it.
    const rss0 = rssKiB(zone!.pid);
    const first = await flood();
    const rss1 = rssKiB(zone!.pid);
    await new Promise((r) => setTimeout(r, 1200));
    const second = await flood();
    const rss2 = rssKiB(zone!.pid);
    const idle = await cpuOver(2000);
    console.log(`flood: ${JSON.stringify({ first, second, rssKiB: [rss0, rss1, rss2], idleCpuMsOver2s: idle })}`);
    for (const f of [first, second]) {
      assert.ok(f.seconds < FLOOD_SEND_BOUND_S, `the flood took ${f.seconds} s to send (bound ${FLOOD_SEND_BOUND_S} s)`);
      // Unicast: 20 at once, then 20 a second, over the flood and the 1 s after it.
      const budget = 20 + 20 * (f.seconds + 1.2);
      assert.ok(f.unicast >= 20 && f.unicast <= budget, `${f.unicast} unicast replies in ${f.seconds.toFixed(2)} s (budget ${budget.toFixed(0)})`);
      // Multicast: the A record at most once a second.
      assert.ok(f.multicast >= 1 && f.multicast <= Math.ceil(f.answering) + 1, `${f.multicast} multicast replies in ${f.answering.toFixed(2)} s of answering`);
    }
    assertRunning();
    answersNormally();
    // Idle: no timers, nothing to read. 50 ms in 2 s is 2.5 % of one core (the tick is 10 ms).
    // The same bound in the VM guest, from when the queue was read: 0 ms in 15 runs there (before
    // the wait for the queue, 180, 250 and 440 ms were seen in 3 of 47 runs, all in the window's
    // first 500 ms: ontap-zone was still reading the flood).
    assert.ok(idle <= 50, `ontap-zone used ${idle} ms of CPU in the 2 s after the flood`);
    // The first flood may grow the heap (V8's young generation, sized on demand: +6 MiB seen); the second no further (+1.6 MiB seen).
    // The same bounds in the VM guest: +0.2-0.4 MiB in the first flood, +0.3-0.5 MiB in the second,
    // +5.1 MiB once in a second flood that took 3.7 s to send beside a second guest.
    assert.ok(rss1 - rss0 < 16 * 1024, `RSS grew ${rss1 - rss0} KiB in the first flood`);
    assert.ok(rss2 - rss1 < 8 * 1024, `RSS grew ${rss2 - rss1} KiB more in the second flood`);
  });
});
}
