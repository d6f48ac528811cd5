/**
 * bench/zone: what ontap-zone costs, beside what iproute2 costs on the same load.
 *
 * Load: N namespaces (default 1000), each with a named macvlan (addrgenmode none, so exactly its 4
 * addresses: wan and lan, IPv4 and IPv6) and an nsid in a "host" namespace, where ontap-zone runs.
 *
 *  1. Initial sync: `ontap-zone --once` (dump everything, render, write), beside
 *     `ip -all netns exec ip -j addr` (every named namespace's addresses, one process each).
 *  2. Event to file: `ip addr add` in a workload namespace until the record is in the written file
 *     (inotify on its directory), beside the same `ip addr add` until `ip monitor all-nsid` prints it;
 *     and ontap-zone's own measure (first event read to file renamed, its log's lag_ms).
 *  3. Host name to file: `hostname NAME` (nsenter into a process's UTS namespace) until NAME's
 *     record is in the file, with 1 and with N UTS namespaces followed (a process with a host name
 *     of its own in each workload namespace), beside `hostname` itself; and ontap-zone's CPU per
 *     change at N (the doorbell's re-read of every followed name, the /proc scan, the write).
 *
 *   node dist/bench/zone.js          (env BENCH_SCALE=0.1 for 100 namespaces; BENCH_SAMPLES=200)
 *
 * Needs root. Everything lives in namespaces named ontap-t-PID-*, removed at the end.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestNamespaces, sweepStaleNamespaces } from '../test/helpers/netns.js';
import { ONTAP_ZONE } from '../test/helpers/zone.js';
import { batchEach } from '../test/helpers/many-workloads.js';
import { holdUts } from '../test/helpers/uts-holders.js';
import { cpuMs } from '../test/helpers/mdns-wire.js';
import { octal } from '../src/ontap-zone/tinydns.js';
import { parseIPv6 } from '../src/ontap-zone/classify.js';

const scale = Number(process.env.BENCH_SCALE ?? '1');
const COUNT = Math.max(1, Math.round(1000 * scale));
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? '200');
const DOMAIN = 'bench.test';

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}
const f = (ms: number): string => `${ms.toFixed(1)} ms`;
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

function run(args: string[], input?: string): { status: number | null; stdout: string; stderr: string; ms: number } {
  const t = now();
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', input, maxBuffer: 1 << 30 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: now() - t };
}

function must(args: string[], input?: string): string {
  const r = run(args, input);
  if (r.status !== 0) throw new Error(`${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

interface Addresses { wan4: string; lan4: string; wan6: string; lan6: string }
function addressesOf(i: number): Addresses {
  const hi = i >> 8;
  const lo = i & 255;
  return { wan4: `198.18.${hi}.${lo}`, lan4: `10.${hi}.${lo}.1`, wan6: `2001:db8:${i.toString(16)}::1`, lan6: `fd00:${i.toString(16)}::1` };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/zone needs root');
  sweepStaleNamespaces();
  const nets = new TestNamespaces();
  const scratch = mkdtempSync(join(tmpdir(), 'ontap-zone-bench-'));
  const workloads: string[] = [];
  const children: ChildProcess[] = [];
  try {
    const { host } = nets.uplink();
    const kernel = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim();
    console.log(`bench/zone on ${process.version}, kernel ${kernel}: ${COUNT} namespaces x 4 addresses, ${SAMPLES} samples`);

    // --- load
    let t = now();
    for (let i = 0; i < COUNT; i++) workloads.push(`ontap-t-${process.pid}-z${i}`);
    // Registered before they exist, so that a failure half-way still removes them.
    nets.names.push(...workloads);
    must(['ip', '-batch', '-'], workloads.map((ns) => `netns add ${ns}`).join('\n') + '\n');
    must(['ip', '-n', host, '-batch', '-'], workloads.flatMap((ns) => [
      `link add link up0 name w0 netns ${ns} type macvlan mode bridge`,
      `netns set ${ns} auto`,
    ]).join('\n') + '\n');
    await batchEach(workloads.map((ns, i) => {
      const a = addressesOf(i);
      return {
        ns,
        lines: [
          'link set lo up',
          `link set w0 addrgenmode none alias wl${i} up`,
          `addr add ${a.wan4}/32 dev w0`,
          `addr add ${a.lan4}/32 dev w0`,
          `addr add ${a.wan6}/64 dev w0 nodad`,
          `addr add ${a.lan6}/64 dev w0 nodad`,
        ],
      };
    }));
    console.log(`load built in ${f(now() - t)}`);

    // --- 1. initial sync
    const zoneArgs = ['--domain', DOMAIN, '--lan', '10.0.0.0/8'];
    const onceRuns: Array<{ wall: number; sync: number; lag: number }> = [];
    for (let r = 0; r < 3; r++) {
      const file = join(scratch, `once${r}`);
      const out = run(['ip', 'netns', 'exec', host, process.execPath, ONTAP_ZONE, ...zoneArgs, '--once', '--verbosity=debug', '--output', file]);
      if (out.status !== 0) throw new Error(`ontap-zone --once: ${out.stderr}`);
      const sync = Number(/event=synced .*ms=(\d+)/.exec(out.stderr)?.[1]);
      const lag = Number(/event=wrote .*flush_ms=([0-9.]+)/.exec(out.stderr)?.[1]);
      onceRuns.push({ wall: out.ms, sync, lag });
      const content = readFileSync(file, 'utf8');
      const records = content.match(/^[+:]wl\d+\.wan\./gm)?.length ?? 0;
      if (records !== 2 * COUNT) throw new Error(`--once published ${records} wan records, expected ${2 * COUNT}`);
    }
    const ipAll: number[] = [];
    let ipAllCount = 0;
    for (let r = 0; r < 3; r++) {
      const out = run(['ip', '-all', 'netns', 'exec', 'ip', '-j', 'addr']);
      ipAll.push(out.ms);
      ipAllCount = out.stdout.split('\n').filter((l) => l.startsWith('netns:')).length;
    }
    const med = (xs: number[]): number => quantile(xs, 0.5);
    console.log('');
    console.log(`initial sync, ${COUNT} namespaces x 4 addresses (median of 3)`);
    console.log(`  ontap-zone --once, whole process          ${f(med(onceRuns.map((x) => x.wall)))}`);
    console.log(`    of which: dump of every namespace       ${f(med(onceRuns.map((x) => x.sync)))}`);
    console.log(`    of which: publish + render + write      ${f(med(onceRuns.map((x) => x.lag)))}`);
    console.log(`  ip -all netns exec ip -j addr             ${f(med(ipAll))}   (${ipAllCount} named namespaces on the machine)`);
    console.log(`  ip monitor all-nsid                        n/a (prints changes, never the current state)`);

    // --- 2. event to file
    const zoneDir = join(scratch, 'zone');
    must(['mkdir', '-p', zoneDir]);
    const zoneFile = join(zoneDir, 'data');
    const zoneLog = join(scratch, 'zone.log');
    const logFd = openSync(zoneLog, 'a');
    const zone = spawn('ip', ['netns', 'exec', host, process.execPath, ONTAP_ZONE, ...zoneArgs, '--verbosity=debug', '--output', zoneFile], { stdio: ['ignore', 'ignore', logFd] });
    closeSync(logFd);
    children.push(zone);
    const zoneReady = now();
    while (!readFileSync(zoneLog, 'utf8').includes('event=serving')) {
      if (zone.exitCode !== null) throw new Error(`ontap-zone exited: ${readFileSync(zoneLog, 'utf8')}`);
      if (now() - zoneReady > 30000) throw new Error('ontap-zone did not start');
      await new Promise((r) => setTimeout(r, 10));
    }
    const monitor = spawn('ip', ['-n', host, 'monitor', 'all-nsid', 'address'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(monitor);
    let monitorText = '';
    const monitorWaiters: Array<{ needle: string; resolve: (t: number) => void }> = [];
    monitor.stdout!.on('data', (d: Buffer) => {
      const at = now();
      monitorText += d.toString();
      for (const w of [...monitorWaiters]) {
        if (monitorText.includes(w.needle)) {
          monitorWaiters.splice(monitorWaiters.indexOf(w), 1);
          w.resolve(at);
        }
      }
      if (monitorText.length > 1 << 20) monitorText = monitorText.slice(-4096);
    });
    await new Promise((r) => setTimeout(r, 300));
    const fileWaiters: Array<{ needle: string; resolve: (t: number) => void }> = [];
    const checkFile = (): void => {
      if (fileWaiters.length === 0) return;
      const at = now();
      let text: string;
      try {
        text = readFileSync(zoneFile, 'utf8');
      } catch {
        return;
      }
      for (const w of [...fileWaiters]) {
        if (text.includes(w.needle)) {
          fileWaiters.splice(fileWaiters.indexOf(w), 1);
          w.resolve(at);
        }
      }
    };
    const watcher = watch(zoneDir, (_type, name) => {
      if (name === 'data') checkFile();
    });
    const viaFile: number[] = [];
    const viaMonitor: number[] = [];
    const ipOnly: number[] = [];
    const lagsBefore = (readFileSync(zoneLog, 'utf8').match(/event=wrote /g) ?? []).length;
    for (let s = 0; s < SAMPLES; s++) {
      const i = (s * 7919) % COUNT;
      const ns = workloads[i]!;
      const address = `2001:db8:ffff::${(s + 1).toString(16)}`;
      const needle = `:wl${i}.wan.${DOMAIN}:28:${octal(parseIPv6(address)!)}:`;
      const inFile = new Promise<number>((resolve) => fileWaiters.push({ needle, resolve }));
      const inMonitor = new Promise<number>((resolve) => monitorWaiters.push({ needle: `inet6 ${address}/128`, resolve }));
      const t0 = now();
      const add = spawn('ip', ['-n', ns, 'addr', 'add', `${address}/128`, 'dev', 'w0', 'nodad'], { stdio: 'ignore' });
      const exited = new Promise<number>((resolve) => add.on('exit', () => resolve(now())));
      const timeout = new Promise<number>((_, reject) => setTimeout(() => reject(new Error(`sample ${s}: no record within 5 s`)), 5000));
      const [tf, tm, te] = await Promise.race([Promise.all([inFile, inMonitor, exited]), timeout]) as [number, number, number];
      viaFile.push(tf - t0);
      viaMonitor.push(tm - t0);
      ipOnly.push(te - t0);
      await new Promise((r) => setTimeout(r, 5));
    }
    // --- 3. host name to file
    const hostSamples = Math.min(SAMPLES, 100);
    const renames = async (pids: number[], tag: string): Promise<{ viaFile: number[]; own: number[]; cpu: number }> => {
      const out = { viaFile: [] as number[], own: [] as number[], cpu: 0 };
      const c0 = cpuMs(zone.pid!);
      for (let s = 0; s < hostSamples; s++) {
        const pid = pids[(s * 7919) % pids.length]!;
        const name = `${tag}${s}`;
        const inFile = new Promise<number>((resolve) => fileWaiters.push({ needle: `+${name}.wan.${DOMAIN}:`, resolve }));
        const t0 = now();
        const p = spawn('nsenter', ['-t', String(pid), '-u', 'hostname', name], { stdio: 'ignore' });
        const exited = new Promise<number>((resolve) => p.on('exit', () => resolve(now())));
        const timeout = new Promise<number>((_, reject) => setTimeout(() => reject(new Error(`host name ${name}: no record within 5 s`)), 5000));
        const [tf, te] = await Promise.race([Promise.all([inFile, exited]), timeout]) as [number, number];
        out.viaFile.push(tf - t0);
        out.own.push(te - t0);
        // Isolated changes: the doorbell reads every name 10 times a second at most, after a
        // burst of 10 (uts-tracker.ts); back-to-back samples would measure the bucket.
        await new Promise((r) => setTimeout(r, 100));
      }
      out.cpu = (cpuMs(zone.pid!) - c0) / hostSamples;
      return out;
    };
    const one = await holdUts([{ ns: workloads[0]!, hostname: 'solo' }]);
    const atOne = await renames(one.pids, 'one');
    await one.stop();
    const all = await holdUts(workloads.map((ns, i) => ({ ns, hostname: `u${i}` })));
    const followed = now();
    while ((readFileSync(zoneFile, 'utf8').match(/^\+u\d+\.wan\./gm)?.length ?? 0) < COUNT) {
      if (now() - followed > 60000) throw new Error('the N host names did not all reach the file');
      await new Promise((r) => setTimeout(r, 50));
    }
    const followedMs = now() - followed;
    const atAll = await renames(all.pids, 'all');
    await all.stop();
    watcher.close();
    const lags = [...readFileSync(zoneLog, 'utf8').matchAll(/event=wrote .*lag_ms=([0-9.]+)/g)].map((m) => Number(m[1])).slice(lagsBefore);
    const bytes = readFileSync(zoneFile).length;
    console.log('');
    console.log(`event to file, ${SAMPLES} samples of \`ip addr add\` in one of ${COUNT} workload namespaces (file ${(bytes / 1024).toFixed(0)} KiB)`);
    console.log(`                                                       p50        p99        max`);
    const row = (name: string, xs: number[]) => console.log(`  ${name.padEnd(51)}${f(quantile(xs, 0.5)).padStart(9)}  ${f(quantile(xs, 0.99)).padStart(9)}  ${f(quantile(xs, 1)).padStart(9)}`);
    row('ontap-zone: event read -> file renamed (own log)', lags);
    row('ip addr add started -> record in ontap-zone\'s file', viaFile);
    row('ip addr add started -> line from ip monitor all-nsid', viaMonitor);
    row('ip addr add started -> ip addr add exited', ipOnly);
    console.log('');
    console.log(`host name to file, ${hostSamples} samples of \`hostname NAME\` (nsenter into a process's UTS namespace); ${COUNT} followed ${f(followedMs)} after their processes started`);
    console.log(`                                                       p50        p99        max`);
    row('1 UTS namespace followed: hostname -> record in file', atOne.viaFile);
    row(`${COUNT} followed: hostname -> record in file`, atAll.viaFile);
    row('nsenter + hostname started -> exited', [...atOne.own, ...atAll.own]);
    console.log(`  ontap-zone CPU per change: ${atOne.cpu.toFixed(1)} ms with 1 followed, ${atAll.cpu.toFixed(1)} ms with ${COUNT} (re-read of every name, /proc scan, write)`);
    console.log('');
    console.log(`targets: p99 event -> file under 50 ms: ${quantile(lags, 0.99) < 50 && quantile(viaFile, 0.99) < 50 ? 'met' : 'NOT met'}; initial sync of 1,000 namespaces under 2 s: ${COUNT >= 1000 ? (med(onceRuns.map((x) => x.wall)) < 2000 ? 'met' : 'NOT met') : `n/a at ${COUNT}`}`);
    writeFileSync(join(scratch, 'done'), '');
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    // Namespaces first in one batch (one ip process), then host and wire.
    const mine = nets.names.filter((n) => workloads.includes(n));
    if (mine.length > 0) spawnSync('ip', ['-batch', '-', '-force'], { input: mine.map((n) => `netns del ${n}`).join('\n') + '\n' });
    nets.names.splice(0, nets.names.length, ...nets.names.filter((n) => !workloads.includes(n)));
    nets.destroy();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
