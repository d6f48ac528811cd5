/**
 * A hostile workload against ontap-zone: uid 65534 in its own user and network namespace
 * (`unshare -Urn`), where root's ontap put a named macvlan, so ontap-zone watches it, adds
 * thousands of addresses to it, then churns one more. ontap-zone must publish at most
 * --max-addresses of them (one log line saying so), spend little CPU on changes that cannot change
 * the file, and keep another workload's changes reaching the file as fast as before.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import { TestNamespaces, ip, sweepStaleNamespaces } from '../helpers/netns.js';
import { TestDaemon, ONTAP } from '../helpers/ontapd.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';
import { TestZone } from '../helpers/zone.js';

const DOMAIN = 'flood.test';
/** ontap-zone's default --max-addresses. */
const CAP = 64;
const FLOOD = 3000;
const CHURN_MS = 4000;
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

/** The flood's i-th address: 2001:db8:1:i::1, so that address order is i's order. */
const floodAddress = (i: number): string => `2001:db8:1:${i.toString(16)}::1`;

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('setpriv') && hasCommand('unshare') && hasCommand('nsenter'), 'needs iproute2 and util-linux (setpriv, unshare, nsenter)'],
  [() => spawnSync('setpriv', [...NOBODY.slice(1), 'unshare', '-Urn', 'true']).status === 0, 'uid 65534 cannot create a user namespace here (unprivileged user namespaces disabled)'],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
]);

/** CPU time (user + system) of a process so far, in ms (/proc/PID/stat, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  // After "pid (comm) ": state is field 3, utime 14, stime 15.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Distinct addresses the file publishes for workload `name` (any record form). */
function publishedFor(content: string, name: string): Set<string> {
  const out = new Set<string>();
  for (const line of content.split('\n')) {
    if (!line.startsWith(`+${name}.`) && !line.startsWith(`:${name}.`)) continue;
    const f = line.split(':');
    out.add(line.startsWith('+') ? f[1]! : f[3]!);
  }
  return out;
}

/** tinydns-data's octal rdata of an IPv6 address, as publishedFor returns it. */
function octal6(address: string): string {
  const [head, tail = ''] = address.split('::');
  const h = head!.split(':').filter((x) => x !== '');
  const t = tail.split(':').filter((x) => x !== '');
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t].map((g) => parseInt(g, 16));
  return groups.flatMap((g) => [g >> 8, g & 255]).map((b) => '\\' + b.toString(8).padStart(3, '0')).join('');
}

describeWhen('ontap-zone against a workload with thousands of addresses (uid 65534, own user namespace)', reason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let other = '';
  let daemon: TestDaemon;
  let zone: TestZone;
  const children: ChildProcess[] = [];
  let floodPid = 0;
  let floodIf = '';
  let otherIf = '';
  let nextOther = 1;

  /** Spawns argv, resolves with the first line of its stdout once it has printed one. */
  async function holder(argv: string[]): Promise<{ child: ChildProcess; line: string }> {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.push(child);
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      child.on('exit', (code) => reject(new Error(`${argv.join(' ')} exited with ${code}: ${err}\n${daemon.log}`)));
    });
    return { child, line };
  }

  /** argv run as uid 65534 inside the flood workload's user and network namespace. */
  function inFlood(argv: string[]): string[] {
    return [...NOBODY, 'nsenter', '-t', String(floodPid), '-U', '-n', '--preserve-credentials', '--', ...argv];
  }

  /** ms from `ip addr add` in the other workload to its record in the file. */
  async function otherLatency(): Promise<number> {
    const addr = `203.0.113.${nextOther++}`;
    const needle = `+other.wan.${DOMAIN}:${addr}:`;
    let resolveSeen!: () => void;
    const seen = new Promise<void>((r) => (resolveSeen = r));
    const check = (): void => {
      if (zone.content.includes(needle)) resolveSeen();
    };
    const watcher = watch(zone.dir, check);
    const poll = setInterval(check, 5);
    const t0 = performance.now();
    try {
      ip('-n', other, 'addr', 'add', `${addr}/32`, 'dev', otherIf);
      check();
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${addr} of the other workload did not reach the file in 10 s`)), 10000));
      await Promise.race([seen, timeout]);
      return performance.now() - t0;
    } finally {
      clearInterval(poll);
      watcher.close();
    }
  }

  async function latencies(n: number, gapMs: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      out.push(await otherLatency());
      await new Promise((r) => setTimeout(r, gapMs));
    }
    return out;
  }

  /** Waits until the flood's published set has not changed for 1 s; returns it. */
  async function settledFlood(): Promise<Set<string>> {
    let last = '';
    let since = Date.now();
    const deadline = Date.now() + 30000;
    for (;;) {
      const now = [...publishedFor(zone.content, 'flood')].sort().join(',');
      if (now !== last) {
        last = now;
        since = Date.now();
      } else if (Date.now() - since >= 1000) {
        return publishedFor(zone.content, 'flood');
      }
      if (Date.now() > deadline) throw new Error('the flood workload\'s records never settled');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  interface Churn { stop(): void; changes(): number }

  /** Adds and deletes `address` on `dev` in a loop, as uid 65534 in the flood workload's namespace. */
  function churn(address: string, dev: string): Churn {
    const counter = join(zone.dir, `churn.${process.pid}.${dev}`);
    const fd = openSync(counter, 'w');
    const loop = inFlood(['sh', '-c', `while :; do ip addr add ${address}/128 dev ${dev} nodad && ip addr del ${address}/128 dev ${dev} && printf .; done`]);
    const child = spawn(loop[0]!, loop.slice(1), { stdio: ['ignore', fd, 'ignore'], detached: true });
    closeSync(fd);
    children.push(child);
    return {
      stop: () => {
        try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
      },
      changes: () => readFileSync(counter).length * 2,
    };
  }

  /** ontap-zone's CPU over CHURN_MS of `c`: ms in all, and per change. */
  async function cpuOver(c: Churn): Promise<{ cpu: number; changes: number; wall: number; perChange: number }> {
    await new Promise((r) => setTimeout(r, 300));
    const cpu0 = cpuMs(zone.pid);
    const n0 = c.changes();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, CHURN_MS));
    const wall = performance.now() - t0;
    const cpu = cpuMs(zone.pid) - cpu0;
    const changes = c.changes() - n0;
    return { cpu, changes, wall, perChange: cpu / Math.max(1, changes) };
  }

  let baseline: number[] = [];
  let flooded = false;
  /** ontap-zone's CPU per change of an address on the flood namespace's lo (no name: nothing to publish), before the flood. */
  let floor = { cpu: 0, changes: 0, wall: 0, perChange: 0 };


  before(async () => {
    sweepStaleNamespaces();
    ({ host } = nets.uplink());
    other = nets.add('other');
    daemon = new TestDaemon(host, ['up0'], ['--mode', '0666', '--family', 'macvlan']);
    await daemon.start();
    zone = new TestZone(host, ['--domain', DOMAIN]);
    await zone.start();
    ({ line: otherIf } = await holder(['ip', 'netns', 'exec', other, process.execPath, ONTAP, '-t', 'macvlan', '-n', 'other', daemon.socket(), '--', 'sh', '-c', 'echo "$ONTAP_IFNAME"; exec sleep 600']));
    // The flood namespace is uid 65534's (its own user namespace owns it); the named macvlan in it
    // is root's, since ontapd gives non-root callers no macvlan in a namespace another user
    // namespace owns (issue 11 item 7): a workload whose namespace an unprivileged user runs.
    const owner = await holder([...NOBODY, 'unshare', '-Urn', 'sh', '-c', 'echo ready; exec sleep 600']);
    floodPid = owner.child.pid!;
    const flood = await holder(['nsenter', '-t', String(floodPid), '-n', '--', process.execPath, ONTAP, '-t', 'macvlan', '-n', 'flood', daemon.socket(), '--', 'sh', '-c', 'echo "$ONTAP_IFNAME"; exec sleep 600']);
    floodIf = flood.line;
    // The other workload before the flood: how fast its changes reach the file here and now.
    baseline = await latencies(10, 50);
    // And what reading a change costs ontap-zone here and now, under this machine's load.
    const lo = churn('2001:db8:eeee::1', 'lo');
    try {
      floor = await cpuOver(lo);
    } finally {
      lo.stop();
    }
  });

  after(async () => {
    for (const c of children) {
      try { process.kill(-c.pid!, 'SIGKILL'); } catch { /* gone */ }
    }
    await zone?.stop();
    await daemon?.stop();
    if (process.env.ONTAP_TEST_LOG) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(process.env.ONTAP_TEST_LOG, `${zone?.log ?? ''}\n${daemon?.log ?? ''}`);
    }
    zone?.removeDir();
    daemon?.removeDir();
    nets.destroy();
  });

  test(`${FLOOD} addresses: ${CAP} published (the lowest), one log line`, async () => {
    const lines = Array.from({ length: FLOOD }, (_, i) => `addr add ${floodAddress(i)}/128 dev ${floodIf} nodad`);
    const batch = inFlood(['ip', '-batch', '-']);
    const r = spawnSync(batch[0]!, batch.slice(1), { input: lines.join('\n') + '\n', encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    flooded = true;
    const published = await settledFlood();
    assert.equal(published.size, CAP, `the flood workload has ${published.size} addresses in the file`);
    const want = new Set(Array.from({ length: CAP }, (_, i) => octal6(floodAddress(i))));
    assert.deepEqual([...published].sort(), [...want].sort(), 'the first addresses in address order');
    assert.match(zone.log, /level=warn event=addresses-capped name=flood nsid=[0-9]+ where=[0-9]+\/\S+ limit=64\n/);
  });

  test('churning an address it cannot publish costs ontap-zone little CPU; another workload\'s changes stay as fast', async () => {
    assert.ok(flooded, 'the flood test ran first');
    // One address past the cap, added and deleted in a loop, as uid 65534 in the workload's namespace.
    const c = churn('2001:db8:ffff::1', floodIf);
    let during: number[] = [];
    let flood = { cpu: 0, changes: 0, wall: 0, perChange: 0 };
    try {
      flood = await cpuOver(c);
      // Then, the churn going on, the other workload's changes.
      during = await latencies(12, 100);
    } finally {
      c.stop();
    }
    process.stdout.write(`# flood of ${FLOOD}: ${flood.changes} churn changes in ${flood.wall.toFixed(0)} ms cost ontap-zone ${flood.cpu} ms of CPU (${flood.perChange.toFixed(2)} ms each; ` +
      `a change on lo before the flood ${floor.perChange.toFixed(2)} ms, ${floor.changes} changes); other workload to file: before p50 ${median(baseline).toFixed(1)} max ${Math.max(...baseline).toFixed(1)} ms, ` +
      `during p50 ${median(during).toFixed(1)} max ${Math.max(...during).toFixed(1)} ms\n`);
    assert.ok(flood.changes > 50 && floor.changes > 50, `the churns ran (${flood.changes}, ${floor.changes} changes)`);
    // A change the flood cannot publish costs what reading any change costs. Measured here (2 cores,
    // other test runs beside it): 0.25-0.55 ms per change either way, with 40,000 addresses too.
    // Before: 2-5 ms per change at 3,000 addresses (1.0-1.8 ms with the cap alone: each change
    // still re-sorted the 3,000).
    assert.ok(flood.perChange < 2 * floor.perChange + 0.2, `ontap-zone used ${flood.perChange.toFixed(2)} ms of CPU per change of the flood (${flood.cpu} ms for ${flood.changes}), ${floor.perChange.toFixed(2)} ms per change on lo`);
    // 1-8 % of the wall time now; 47-66 % before.
    assert.ok(flood.cpu < flood.wall * 0.25, `ontap-zone used ${flood.cpu} ms of CPU in ${flood.wall.toFixed(0)} ms of churn`);
    // The other workload, median of 12 changes, against its own median before the flood (5-40 ms
    // here, with the machine's load): during the churn now 0.8-1.3 times that; before the fix
    // 79-200 ms against 7-48 ms. The slowest one is reported, not asserted: with the churn's ip
    // processes keeping one of the two cores busy and other test runs beside, single changes took
    // 100-540 ms now and then, and up to 450 ms before the flood (ontap-zone's own lag_ms for
    // those stayed at 2-20 ms).
    const normal = median(baseline);
    assert.ok(median(during) < 2 * normal + 20, `the other workload's median change-to-file time during the churn was ${median(during).toFixed(1)} ms, before the flood ${normal.toFixed(1)} ms`);
    // Rate-limited: still the one line.
    assert.equal(zone.log.match(/event=addresses-capped /g)?.length, 1);
    assert.equal(publishedFor(zone.content, 'flood').size, CAP);
  });
});
