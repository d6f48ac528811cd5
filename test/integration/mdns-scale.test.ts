/**
 * ontap-zone --mdns with 100 workloads: 100 macvlans on up0 (bridge mode: each hears the others'
 * probes and announcements), one namespace and one IPv4 address each, made with `ip -batch`
 * (test/helpers/many-workloads.ts). Every name is established within a bound and answers from the
 * wire; ontap-zone then holds two sockets per workload and, idle, uses next to no CPU. The 100
 * devices are one segment: one socket per family listens, so each packet on it is read once, not
 * once per workload (N², which made 1,000 workloads take 39 s of CPU to establish).
 * (bench/mdns does 1,000.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { CLASS_IN, TYPE, encodeMessage } from '../../src/mdns/dns.js';
import { TestNamespaces, eventually, ip, sweepStaleNamespaces } from '../helpers/netns.js';
import { TestZone } from '../helpers/zone.js';
import { blast, cpuMs } from '../helpers/mdns-wire.js';
import { createWorkloads, type ManyWorkloads } from '../helpers/many-workloads.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';

const N = 100;
const NET = '10.208';
const PEER = `${NET}.255.254`;

function sockets(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

const established = (log: string): Set<string> => new Set([...log.matchAll(/event=mdns-established .*mdns=(\S+)/g)].map((m) => m[1]!));

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('python3'), 'needs iproute2 and python3'],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
]);

describeWhen(`ontap-zone --mdns with ${N} workloads`, reason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let wire = '';
  let zone: TestZone | undefined;
  let many: ManyWorkloads | undefined;
  let baseSockets = 0;
  let createdMs = 0;

  before(async () => {
    sweepStaleNamespaces();
    ({ host, wire } = nets.uplink());
    ip('-n', wire, 'addr', 'add', `${PEER}/16`, 'dev', 'peer0');
    zone = new TestZone(host, ['--domain', 'scale.test', '--mdns']);
    await zone.start();
    baseSockets = sockets(zone.pid);
    const t0 = performance.now();
    many = await createWorkloads(host, N, { tag: 'm', prefix: 'wl', net: NET });
    createdMs = performance.now() - t0;
  });

  after(async () => {
    await zone?.stop();
    many?.destroy();
    zone?.removeDir();
    nets.destroy();
  });

  test(`all ${N} names established, each answering a query from the wire`, async () => {
    const t0 = performance.now();
    // Probing takes 0.75-1 s a name; 100 namespaces opened, 200 sockets made, each hearing 99 others.
    await eventually(`${N} responders established`, () => established(zone!.log).size >= N, 10000)
      .catch((e: Error) => assert.fail(`${e.message}: ${established(zone!.log).size} of ${N}\n${zone!.log.slice(-2000)}`));
    const ms = performance.now() - t0;
    console.log(`${N} workloads made in ${createdMs.toFixed(0)} ms; all established ${ms.toFixed(0)} ms later`);
    assert.deepEqual([...established(zone!.log)].sort(), many!.names.map((n) => `${n}.local`).sort());
    assert.doesNotMatch(zone!.log, /event=mdns-(renamed|socket-failed|namespace-unreachable)/);
    const packets = many!.names.map((n, i) => encodeMessage({ id: i, flags: 0, questions: [{ name: `${n}.local`, type: TYPE.A, class: CLASS_IN, unicastResponse: false }], answers: [], authorities: [], additionals: [] }));
    const r = blast(wire, { sockets: [{ src: PEER, port: 0, ttl: 255 }], packets, sends: packets.map((_, i): [number, string, number] => [0, '224.0.0.251', i]), rate: 500, wait: 1 });
    const answered = new Map(r.replies.filter((x) => x[5] === 1).map((x) => [x[4], x[1]]));
    assert.equal(answered.size, N, `answered ${answered.size} of ${N}`);
    for (let i = 0; i < N; i++) assert.equal(answered.get(i), many!.addresses[i], `${many!.names[i]}.local`);
  });

  test('one segment, one listening socket per family: every packet read once (not once per workload)', async () => {
    const before = zone!.log.length;
    process.kill(zone!.pid, 'SIGUSR1');
    await eventually('the status line', () => /event=status /.test(zone!.log.slice(before)), 5000);
    const line = zone!.log.slice(before).split('\n').find((l) => l.includes('event=status '))!;
    const field = (k: string) => Number(new RegExp(` ${k}=(\\d+)`).exec(line)?.[1]);
    assert.equal(field('responders'), N, line);
    assert.equal(field('segments'), 1, line);
    assert.equal(field('listeners'), 2, line);
    // Each workload multicast 3 probes and 2 announcements per family (about 10 N packets) and the
    // wire asked N questions: read once each, that is about 11 N; read by every socket it was ~10 N².
    const received = field('received');
    console.log(`${N} workloads: ontap-zone read ${received} datagrams, handed ${field('dispatched')} to responders`);
    assert.ok(received <= 20 * N, `${received} datagrams read for ${N} workloads: more than 20 per workload`);
    assert.equal(field('sendFailed'), 0, line);
  });

  test("the listener's device deleted: another device of the segment listens at once; every other name still answers", async () => {
    const status = async (): Promise<string[]> => {
      const before = zone!.log.length;
      process.kill(zone!.pid, 'SIGUSR1');
      await eventually('the status lines', () => (zone!.log.slice(before).match(/event=mdns-status /g)?.length ?? 0) >= N - removed.length, 5000);
      return zone!.log.slice(before).split('\n').filter((l) => l.includes('event=mdns-status '));
    };
    const removed: number[] = [];
    const listening = (lines: string[]) => lines.filter((l) => / listens=4,6$/.test(l)).map((l) => / name=(\S+) /.exec(l)![1]!);
    const first = listening(await status());
    assert.equal(first.length, 1, `one device listens for both families: ${first.join(' ')}`);
    const i = many!.names.indexOf(first[0]!);
    assert.ok(i >= 0);
    removed.push(i);
    ip('-n', many!.namespaces[i]!, 'link', 'del', 'w0');
    await eventually(`${first[0]} gone`, () => new RegExp(`event=mdns-stopped .*name=${first[0]} `).test(zone!.log), 3000);
    const next = listening(await status());
    assert.equal(next.length, 1, `another device listens: ${next.join(' ')}`);
    assert.notEqual(next[0], first[0]);
    const rest = many!.names.map((n, j) => ({ n, j })).filter(({ j }) => j !== i);
    const packets = rest.map(({ n, j }) => encodeMessage({ id: j, flags: 0, questions: [{ name: `${n}.local`, type: TYPE.A, class: CLASS_IN, unicastResponse: false }], answers: [], authorities: [], additionals: [] }));
    const r = blast(wire, { sockets: [{ src: PEER, port: 0, ttl: 255 }], packets, sends: packets.map((_, k): [number, string, number] => [0, '224.0.0.251', k]), rate: 500, wait: 1 });
    const answered = new Set(r.replies.filter((x) => x[5] === 1).map((x) => x[4]));
    assert.equal(answered.size, N - 1, `answered ${answered.size} of ${N - 1} after the listener went`);
  });

  test(`two sockets per workload (${2 * (N - 1)} for the ${N - 1} left), and idle for 5 s: under 50 ms of CPU`, async () => {
    // One workload's device was deleted by the test before.
    assert.equal(sockets(zone!.pid) - baseSockets, 2 * (N - 1));
    // Past the last announcements (two, a second apart, after the link-local address's DAD).
    await new Promise((r) => setTimeout(r, 3000));
    const c0 = cpuMs(zone!.pid);
    await new Promise((r) => setTimeout(r, 5000));
    const used = cpuMs(zone!.pid) - c0;
    console.log(`ontap-zone idle with ${N} workloads: ${used} ms of CPU in 5 s`);
    // Nothing is polled and no timer runs when idle: 0 seen; 50 ms is 1 % of a core (the tick is 10 ms).
    assert.ok(used <= 50, `${used} ms of CPU in 5 s idle`);
  });
});
