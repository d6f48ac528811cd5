/**
 * bench/allocate: what a workload start costs with ontap, beside what it costs without.
 * Needs root; builds throwaway namespaces (host with a veth uplink, client), runs ontapd in host,
 * and drives it from worker processes in client. Baselines run in the same bench on the same
 * uplink: `ip link add ... type macvtap` + open, and the CNI reference macvlan plugin.
 *
 *   npm run bench            (env BENCH_SCALE=0.25 for a quick run)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TestNamespaces, sweepStaleNamespaces } from '../test/helpers/netns.js';
import { TestDaemon, ROOT, ONTAP } from '../test/helpers/ontapd.js';

const WORKER = join(ROOT, 'dist/bench/worker.js');
const scale = Number(process.env.BENCH_SCALE ?? '1');
const n = (x: number): number => Math.max(1, Math.round(x * scale));

interface WorkerResult { lat: number[]; del?: number[]; ms: number; groupDeleteMs?: number }

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}
const ms = (usec: number): string => `${(usec / 1000).toFixed(3)} ms`;

function worker(ns: string, args: string[]): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, WORKER, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as WorkerResult) : reject(new Error(`worker ${args[0]} exited ${code}`))));
  });
}

/** P worker processes share `clients` concurrent leases; returns operations per second. */
async function sustained(ns: string, socket: string, type: string, clients: number, total: number): Promise<number> {
  const procs = Math.min(clients, 4);
  const window = Math.max(1, Math.floor(clients / procs));
  const each = Math.ceil(total / procs);
  const t = process.hrtime.bigint();
  await Promise.all(Array.from({ length: procs }, () => worker(ns, ['ontap', socket, type, String(each), String(window)])));
  return (each * procs) / (Number(process.hrtime.bigint() - t) / 1e9);
}

async function cniSustained(hostNs: string, clientNs: string, clients: number, total: number): Promise<number> {
  const procs = Math.min(clients, 4);
  const each = Math.ceil(total / procs);
  const t = process.hrtime.bigint();
  await Promise.all(Array.from({ length: procs }, () => worker(hostNs, ['cni', `/run/netns/${clientNs}`, String(each), 'up0'])));
  return (each * procs) / (Number(process.hrtime.bigint() - t) / 1e9);
}

async function releaseThroughput(ns: string, socket: string, count: number): Promise<{ ms: number; perSecond: number }> {
  const r = (await worker(ns, ['hold', socket, 'macvlan', String(count)])) as unknown as { releaseMs: number };
  return { ms: r.releaseMs, perSecond: count / (r.releaseMs / 1000) };
}

/** Waits until ontapd has deleted every device of the previous phase. */
async function settle(host: string, client: string): Promise<void> {
  const count = (ns: string): number => (JSON.parse(spawnSync('ip', ['-n', ns, '-j', 'link'], { encoding: 'utf8' }).stdout) as unknown[]).length;
  while (count(host) > 3 || count(client) > 1) await new Promise((r) => setTimeout(r, 20));
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/allocate needs root');
  const hasCni = existsSync('/usr/lib/cni/macvlan');
  sweepStaleNamespaces();
  const nets = new TestNamespaces();
  let daemon: TestDaemon | undefined;
  try {
    const { host } = nets.uplink();
    const client = nets.add('client');
    daemon = new TestDaemon(host, ['up0'], ['--verbosity=info', '--max-per-uid', '4096']);
    await daemon.start();
    const socket = daemon.socket();
    console.log(`bench/allocate on ${process.version}, kernel ${spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim()}, scale ${scale}`);

    // Warm up the daemon and the page cache.
    await worker(client, ['ontap', socket, 'macvlan', '20', '1']);

    const rows: Array<[string, number[]]> = [];
    // Round trips hold every lease until the end, so no release (which holds rtnl_lock for a
    // grace period) overlaps an allocation: that cost shows in the sustained figures below.
    rows.push(['ontap macvtap (tap fd in hand)', (await worker(client, ['ontap', socket, 'macvtap', String(n(300)), String(n(300))])).lat]);
    await settle(host, client);
    rows.push(['ontap macvlan (in caller netns)', (await worker(client, ['ontap', socket, 'macvlan', String(n(300)), String(n(300))])).lat]);
    await settle(host, client);
    const iplink = await worker(host, ['iplink', 'up0', String(n(100))]);
    rows.push(['ip link add macvtap + open (exec)', iplink.lat]);
    let cni: WorkerResult | undefined;
    if (hasCni) {
      cni = await worker(host, ['cni', `/run/netns/${client}`, String(n(100)), 'up0']);
      rows.push(['CNI macvlan plugin ADD (exec)', cni.lat]);
      rows.push(['CNI macvlan plugin DEL (exec)', cni.del!]);
    }
    console.log('\nallocation round trip (connect to device ready), sequential');
    console.log(`${'operation'.padEnd(36)}${'p50'.padStart(12)}${'p99'.padStart(12)}${'count'.padStart(8)}`);
    for (const [name, lat] of rows) {
      console.log(`${name.padEnd(36)}${ms(quantile(lat, 0.5)).padStart(12)}${ms(quantile(lat, 0.99)).padStart(12)}${String(lat.length).padStart(8)}`);
    }

    console.log('\nsustained allocations + releases per second');
    console.log(`${'clients'.padEnd(10)}${'ontap macvlan'.padStart(16)}${'ontap macvtap'.padStart(16)}${hasCni ? 'CNI macvlan ADD+DEL'.padStart(22) : ''}`);
    for (const clients of [1, 16, 256]) {
      const total = n(clients === 256 ? 1024 : 400);
      const vlanRate = await sustained(client, socket, 'macvlan', clients, total);
      const tapRate = await sustained(client, socket, 'macvtap', Math.min(clients, 64), n(200));
      const cniRate = hasCni ? await cniSustained(host, client, clients, n(clients === 1 ? 40 : 80)) : NaN;
      console.log(`${String(clients).padEnd(10)}${vlanRate.toFixed(0).padStart(14)}/s${tapRate.toFixed(0).padStart(14)}/s${hasCni ? `${cniRate.toFixed(0).padStart(20)}/s` : ''}`);
    }
    if (!hasCni) console.log('(CNI baseline skipped: apt-get install containernetworking-plugins)');

    // What ontap adds in front of every VM or service start: interleaved runs, medians.
    const starts: Record<string, number[]> = { node: [], ontap: [] };
    for (let i = 0; i < n(40); i++) {
      for (const [key, args] of [['node', ['-e', '0']], ['ontap', [ONTAP, '-t', 'macvtap', socket, '--', 'true']]] as const) {
        const t = process.hrtime.bigint();
        const r = spawnSync(process.execPath, [...args]);
        if (r.status !== 0) throw new Error(`${key} exited ${r.status}: ${r.stderr}`);
        starts[key]!.push(Number(process.hrtime.bigint() - t) / 1000);
      }
    }
    console.log('\nprocess start, median of interleaved runs');
    console.log(`node -e 0                           ${ms(quantile(starts.node!, 0.5)).padStart(12)}`);
    console.log(`ontap -t macvtap SOCKET -- true     ${ms(quantile(starts.ontap!, 0.5)).padStart(12)}   (+${ms(quantile(starts.ontap!, 0.5) - quantile(starts.node!, 0.5))})`);
    await settle(host, client);

    const release = await releaseThroughput(client, socket, n(500));
    console.log('\nrelease throughput');
    console.log(`ontap: ${n(500)} leases closed at once, all devices deleted in ${release.ms.toFixed(1)} ms: ${release.perSecond.toFixed(0)} devices/s`);
    console.log(`ip link del group (one call, ${n(100)} macvtaps): ${iplink.groupDeleteMs!.toFixed(1)} ms: ${(n(100) / (iplink.groupDeleteMs! / 1000)).toFixed(0)} devices/s`);
    if (cni) console.log(`CNI macvlan DEL, one by one: p50 ${ms(quantile(cni.del!, 0.5))}: ${(1e6 / quantile(cni.del!, 0.5)).toFixed(0)} devices/s`);
  } finally {
    await daemon?.stop();
    daemon?.removeDir();
    nets.destroy();
  }
}

main().catch((e: unknown) => {
  console.error(`bench/allocate: ${(e as Error).stack}`);
  process.exitCode = 1;
});
