/**
 * ontap-zone following 1,000 UTS namespaces, idle: 1,000 workloads (macvlans on up0 in namespaces
 * of their own, test/helpers/many-workloads.ts), each with a process in a UTS namespace of its own
 * named hN. Every hN is published; then, while nothing changes for 10 s, ontap-zone uses under
 * 10 ms of CPU and makes no system calls (strace -c -f over the window): nothing is polled.
 * Then one workload sets its host name in a loop (as fast as sethostname(2) goes) for 4 s: the
 * doorbell rings for every call, ontap-zone reads the names at most 10 times a second (its token
 * bucket), so it stays under a third of a core, another workload's new name still reaches the file
 * within a second, and the loop's last name is published.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { TestNamespaces, eventually, sweepStaleNamespaces } from '../helpers/netns.js';
import { TestZone } from '../helpers/zone.js';
import { cpuMs } from '../helpers/mdns-wire.js';
import { createWorkloads, type ManyWorkloads } from '../helpers/many-workloads.js';
import { holdUts, type UtsHolders } from '../helpers/uts-holders.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';

const N = 1000;

const reason = missing([
  [isRoot, 'needs root (network and UTS namespaces)'],
  [() => hasCommand('ip') && hasCommand('python3') && hasCommand('strace'), 'needs iproute2, python3 and strace'],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
]);

describeWhen(`ontap-zone following ${N} UTS namespaces, idle`, reason, () => {
  const nets = new TestNamespaces();
  let zone: TestZone | undefined;
  let many: ManyWorkloads | undefined;
  let holders: UtsHolders | undefined;

  before(async () => {
    sweepStaleNamespaces();
    const { host } = nets.uplink();
    zone = new TestZone(host, ['--domain', 'idle.test', '--verbosity=info']);
    await zone.start();
    many = await createWorkloads(host, N, { tag: 'u', prefix: 'wl', net: '10.210' });
    holders = await holdUts(many.namespaces.map((ns, i) => ({ ns, hostname: `h${i}` })));
  });

  after(async () => {
    await holders?.stop();
    await zone?.stop();
    many?.destroy();
    zone?.removeDir();
    nets.destroy();
  });

  test(`all ${N} host names published; idle for 10 s: under 10 ms of CPU and no system calls`, async () => {
    const published = () => zone!.content.split('\n').filter((l) => /^\+h\d+\.lan\.idle\.test:/.test(l)).length;
    // The holders' hostnames rang the doorbell; what they joined is seen at the scan it causes.
    await eventually(`${N} host names in the file`, () => published() === N, 30000)
      .catch((e: Error) => assert.fail(`${e.message}: ${published()} of ${N}\n${zone!.log.slice(-2000)}`));
    for (let i = 0; i < N; i += 97) assert.ok(zone!.content.includes(`+h${i}.lan.idle.test:${many!.addresses[i]}:`), `h${i} has wl${i}'s address`);
    await new Promise((r) => setTimeout(r, 1000));
    const trace = spawn('strace', ['-c', '-f', '-p', String(zone!.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let summary = '';
    trace.stderr!.on('data', (d: Buffer) => (summary += d.toString()));
    const traced = new Promise((r) => trace.on('exit', r));
    await new Promise((r) => setTimeout(r, 500)); // attached
    const c0 = cpuMs(zone!.pid);
    await new Promise((r) => setTimeout(r, 10000));
    const used = cpuMs(zone!.pid) - c0;
    trace.kill('SIGINT');
    await traced;
    console.log(`ontap-zone idle following ${N} UTS namespaces: ${used} ms of CPU in 10 s; strace -c:\n${summary}`);
    // The tick is 10 ms: 10 means at most one tick.
    assert.ok(used <= 10, `${used} ms of CPU in 10 s idle`);
    const total = /^\S+\s+\S+\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total$/m.exec(summary);
    const calls = total ? Number(total[1]) : 0;
    // Attaching interrupts the blocked epoll_wait of each thread (restarted once): a few calls, not a stream.
    assert.ok(calls <= 20, `${calls} system calls in 10 s idle:\n${summary}`);
  });

  test('a workload setting its host name in a loop: ontap-zone under a third of a core, others still named', async () => {
    const LOOP_MS = 4000;
    const loop = spawn('nsenter', ['-t', String(holders!.pids[0]), '-u', 'python3', '-I', '-c', String.raw`
import socket, time
end = time.monotonic() + ${LOOP_MS / 1000}
n = 0
while time.monotonic() < end:
    socket.sethostname('spin%d' % (n % 2))
    n += 1
socket.sethostname('spun')
print(n, flush=True)
`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let calls = '';
    loop.stdout!.on('data', (d: Buffer) => (calls += d.toString()));
    const looped = new Promise<number | null>((r) => loop.on('exit', r));
    const c0 = cpuMs(zone!.pid);
    await new Promise((r) => setTimeout(r, LOOP_MS / 2));
    // Another workload's change, in the middle of the storm.
    const t0 = performance.now();
    const other = spawn('nsenter', ['-t', String(holders!.pids[500]), '-u', 'hostname', 'calm'], { stdio: 'inherit' });
    await new Promise((r) => other.on('exit', r));
    await eventually('calm in the file during the loop', () => zone!.content.includes(`+calm.lan.idle.test:${many!.addresses[500]}:`), 1000)
      .catch((e: Error) => assert.fail(`${e.message}\n${zone!.log.slice(-2000)}`));
    const calmMs = performance.now() - t0;
    assert.equal(await looped, 0, 'the loop ran');
    const used = cpuMs(zone!.pid) - c0;
    await eventually('the loop\'s last name in the file', () => zone!.content.includes(`+spun.lan.idle.test:${many!.addresses[0]}:`), 1000)
      .catch((e: Error) => assert.fail(`${e.message}\n${zone!.log.slice(-2000)}`));
    console.log(`sethostname loop: ${calls.trim()} calls in ${LOOP_MS} ms; ontap-zone used ${used} ms of CPU; another workload's name in the file after ${calmMs.toFixed(0)} ms`);
    assert.ok(Number(calls) > 1000, `the loop rang the doorbell only ${calls.trim()} times`);
    assert.ok(used < LOOP_MS / 3, `ontap-zone used ${used} ms of CPU in ${LOOP_MS} ms of a sethostname loop`);
  });
});
