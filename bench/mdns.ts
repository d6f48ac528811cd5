/**
 * bench/mdns: ontap-zone --mdns beside avahi-daemon on the same machine, in one run.
 *
 * Layout: "host" (ontap-zone --mdns; up0, a veth to peer0 in "wire"), workloads as macvlans on up0
 * in namespaces of their own (test/helpers/many-workloads.ts), and the baseline: avahi-daemon in
 * a namespace of its own on a macvlan of up0 too (so its packets take the same path), host name
 * avbase. On the wire: an avahi-daemon that resolves, a Python listener on the group, and a Python
 * client for query latency (legacy unicast queries, answered by unicast).
 *
 *  1. query -> answer, 1 workload: ours (wl0.local) beside avahi (avbase.local, its own name)
 *  2. `ip addr add` -> first announcement of the new address on the wire: ours (an existing name)
 *     beside avahi (its host name gets the new address)
 *  3. workload start -> first successful avahi-resolve on the wire: ours (a new workload: alias,
 *     up, address in one `ip -batch`) beside `avahi-publish -a` (a new name); the probing floor is
 *     750 ms (three probes 250 ms apart) plus a random 0-250 ms
 *  4. N workloads (default 1000): time until all are established, ontap-zone's CPU meanwhile
 *  5. query -> answer at N workloads, ours beside avahi
 *  6. ontap-zone's CPU while the N workloads sit idle for 10 s
 *
 *   node dist/bench/mdns.js        (env BENCH_SCALE=0.1 for 100 workloads; BENCH_SAMPLES=100)
 *
 * Needs root, avahi-daemon, avahi-utils, dbus-daemon, python3. Everything is in namespaces named
 * ontap-t-PID-*, removed at the end.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { AvahiPeer, avahiMissing } from '../test/helpers/avahi.js';
import { TestNamespaces, ip, sweepStaleNamespaces } from '../test/helpers/netns.js';
import { TestZone } from '../test/helpers/zone.js';
import { DNS_PY, LISTEN, cpuMs, rssKiB, type WireResponse } from '../test/helpers/mdns-wire.js';
import { createWorkloads, type ManyWorkloads } from '../test/helpers/many-workloads.js';

const scale = Number(process.env.BENCH_SCALE ?? '1');
const COUNT = Math.max(2, Math.round(1000 * scale));
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? '100');
const NET = '10.209';
const PEER = `${NET}.255.254`;
const AVAHI_ADDR = `${NET}.254.1`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}
const f = (ms: number): string => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : '-');

/**
 * stdin: {"queries": [NAME...], "spacing": MS}; one legacy query each (from one socket, to the
 * group), the next after the answer or 1 s. stdout: [RTT_MS or null, ...].
 */
const LATENCY = DNS_PY + String.raw`
source = sys.argv[1]
job = json.load(sys.stdin)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
s.bind((source, 0))
out = []
for i, name in enumerate(job['queries']):
    qid = (i % 60000) + 1
    t0 = time.perf_counter()
    s.sendto(query(name, 1, qid), ('224.0.0.251', 5353))
    rtt = None
    while True:
        left = 1.0 - (time.perf_counter() - t0)
        if left <= 0: break
        s.settimeout(left)
        try:
            data, peer = s.recvfrom(9000)
        except socket.timeout:
            break
        if len(data) >= 2 and struct.unpack('!H', data[:2])[0] == qid:
            rtt = (time.perf_counter() - t0) * 1000; break
    out.append(rtt)
    time.sleep(job['spacing'] / 1000)
print(json.dumps(out))
`;

function latency(wire: string, names: string[], spacingMs: number): Array<number | null> {
  const r = spawnSync('ip', ['netns', 'exec', wire, 'python3', '-I', '-c', LATENCY, PEER], { input: JSON.stringify({ queries: names, spacing: spacingMs }), encoding: 'utf8', timeout: 120000 });
  if (r.status !== 0) throw new Error(`latency client: ${r.stderr}`);
  return JSON.parse(r.stdout) as Array<number | null>;
}

/** The wire's listener, streamed: waiters for a response that satisfies a predicate. */
class Listener {
  private readonly child: ChildProcess;
  private buf = '';
  private ready = false;
  private waiters: Array<{ match: (m: WireResponse) => boolean; resolve: (m: WireResponse) => void }> = [];

  constructor(wire: string) {
    this.child = spawn('ip', ['netns', 'exec', wire, 'python3', '-I', '-c', LISTEN, PEER, '100000'], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let nl;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        if (line === 'ready') {
          this.ready = true;
          continue;
        }
        const m = JSON.parse(line) as WireResponse;
        for (const w of [...this.waiters]) {
          if (w.match(m)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(m);
          }
        }
      }
    });
  }

  async started(): Promise<void> {
    while (!this.ready) await sleep(10);
  }

  next(match: (m: WireResponse) => boolean, timeoutMs: number): Promise<WireResponse | undefined> {
    return new Promise((resolve) => {
      const w = { match, resolve: (m: WireResponse | undefined) => { clearTimeout(t); resolve(m); } };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}

const announces = (address: string) => (m: WireResponse): boolean => m.answers.some((a) => a.type === 1 && a.data === address && a.ttl > 0);

function sockets(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch { /* gone */ }
  }
  return n;
}

function established(zone: TestZone): number {
  return zone.log.match(/event=mdns-established /g)?.length ?? 0;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/mdns needs root');
  const absent = avahiMissing();
  if (absent) throw new Error(`bench/mdns ${absent}`);
  sweepStaleNamespaces();
  const nets = new TestNamespaces();
  const cleanups: Array<() => void | Promise<void>> = [];
  const rows: string[] = [];
  const row = (what: string, ours: string, avahi: string): void => {
    rows.push(`  ${what.padEnd(52)}${ours.padStart(24)}${avahi.padStart(24)}`);
  };
  const pq = (xs: number[]): string => `${f(quantile(xs, 0.5))} / ${f(quantile(xs, 0.99))}`;
  try {
    const { host, wire } = nets.uplink();
    ip('-n', wire, 'addr', 'add', `${PEER}/16`, 'dev', 'peer0');
    const kernel = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim();
    const avahiVersion = spawnSync('avahi-daemon', ['--version'], { encoding: 'utf8' }).stdout.trim();
    console.log(`bench/mdns on ${process.version}, kernel ${kernel}, ${avahiVersion}: up to ${COUNT} workloads, ${SAMPLES} samples`);

    // The baseline's namespace: a macvlan of up0, like a workload's.
    const avns = nets.add('avbase');
    ip('-n', host, 'link', 'add', 'link', 'up0', 'name', 'avb0', 'netns', avns, 'type', 'macvlan', 'mode', 'bridge');
    ip('-n', avns, 'link', 'set', 'avb0', 'up');
    ip('-n', avns, 'addr', 'add', `${AVAHI_ADDR}/16`, 'dev', 'avb0');
    const baseline = new AvahiPeer({ netns: avns, interfaces: ['avb0'], hostName: 'avbase' });
    cleanups.push(() => baseline.stop());
    const resolver = new AvahiPeer({ netns: wire, interfaces: ['peer0'], hostName: 'benchpeer' });
    cleanups.push(() => resolver.stop());
    await baseline.start();
    await resolver.start();

    const zone = new TestZone(host, ['--domain', 'bench.test', '--mdns']);
    cleanups.push(async () => {
      await zone.stop();
      zone.removeDir();
    });
    await zone.start();
    const listener = new Listener(wire);
    cleanups.push(() => listener.stop());
    await listener.started();

    const workloads: ManyWorkloads[] = [];
    cleanups.push(() => { for (const w of workloads) w.destroy(); });
    workloads.push(await createWorkloads(host, 1, { tag: 'a', prefix: 'wl', net: NET }));
    while (established(zone) < 1) await sleep(20);
    await sleep(2500); // past both announcements
    // Wait until avahi's own name is settled (it probes and announces on start too).
    await baseline.publishAddress('avwarm.local', `${NET}.254.2`).then((p) => p.stop());

    // --- 1. query latency, 1 workload. Spacing 60 ms: under our 20/s unicast budget per link.
    const ours1 = latency(wire, Array(SAMPLES).fill('wl0.local'), 60);
    const avahi1 = latency(wire, Array(SAMPLES).fill('avbase.local'), 60);
    const ok = (xs: Array<number | null>): number[] => xs.filter((x): x is number => x !== null);
    row('query -> answer, 1 workload (p50 / p99)', pq(ok(ours1)), pq(ok(avahi1)));
    const lost1 = [ours1.length - ok(ours1).length, avahi1.length - ok(avahi1).length];

    // --- 2. ip addr add -> announcement on the wire
    const announceSamples = Math.min(30, SAMPLES);
    const ourAnnounce: number[] = [];
    const avahiAnnounce: number[] = [];
    for (let s = 0; s < announceSamples; s++) {
      for (const [ns, dev, list, base] of [[workloads[0]!.namespaces[0]!, 'w0', ourAnnounce, 200], [avns, 'avb0', avahiAnnounce, 201]] as const) {
        const address = `${NET}.${base}.${s + 1}`;
        const heard = listener.next(announces(address), 5000);
        const t0 = monotonicMs();
        ip('-n', ns, 'addr', 'add', `${address}/32`, 'dev', dev);
        const m = await heard;
        if (m) list.push(m.ns / 1e6 - t0);
      }
      await sleep(150); // past our 100 ms update spacing
    }
    row('ip addr add -> announcement (p50 / p99)', `${pq(ourAnnounce)}`, `${pq(avahiAnnounce)}`);
    // The addresses go again, so that later answers are what they were.
    for (let s = 0; s < announceSamples; s++) {
      ip('-n', workloads[0]!.namespaces[0]!, 'addr', 'del', `${NET}.200.${s + 1}/32`, 'dev', 'w0');
      ip('-n', avns, 'addr', 'del', `${NET}.201.${s + 1}/32`, 'dev', 'avb0');
    }

    // --- 3. start -> first avahi-resolve on the wire
    const startSamples = 5;
    const ourStart: number[] = [];
    const avahiStart: number[] = [];
    const fresh = await createWorkloads(host, startSamples, { tag: 's', prefix: 'unused', net: NET, bare: true });
    workloads.push(fresh);
    for (let s = 0; s < startSamples; s++) {
      const name = `new${s}`;
      const address = `${NET}.202.${s + 1}`;
      const resolved = resolver.resolveName(`${name}.local`, 4, 6000).then((r) => ({ r, at: monotonicMs() }));
      await sleep(300); // the resolver is asking by now
      const t0 = monotonicMs();
      spawnSync('ip', ['-n', fresh.namespaces[s]!, '-batch', '-'], { input: `link set w0 alias ${name} up\naddr add ${address}/16 dev w0\n` });
      const { r, at } = await resolved;
      if (r?.includes(address)) ourStart.push(at - t0);

      const avName = `avnew${s}`;
      const avAddress = `${NET}.203.${s + 1}`;
      const avResolved = resolver.resolveName(`${avName}.local`, 4, 6000).then((x) => ({ r: x, at: monotonicMs() }));
      await sleep(300);
      const t1 = monotonicMs();
      const pub = baseline.publishAddress(`${avName}.local`, avAddress);
      const a = await avResolved;
      if (a.r?.includes(avAddress)) avahiStart.push(a.at - t1);
      await (await pub).stop();
    }
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    row(`start -> first avahi-resolve (${startSamples}: p50 / max)`, `${f(quantile(ourStart, 0.5))} / ${f(quantile(ourStart, 1))}`, `${f(quantile(avahiStart, 0.5))} / ${f(quantile(avahiStart, 1))}`);
    row('  of which over the 750 ms probing floor (mean)', f(mean(ourStart) - 750), f(mean(avahiStart) - 750));

    // --- 4. N workloads
    const before = { cpu: cpuMs(zone.pid), established: established(zone), sockets: sockets(zone.pid), rss: rssKiB(zone.pid) };
    const t0 = monotonicMs();
    const more = COUNT - 1 - startSamples;
    workloads.push(await createWorkloads(host, more, { tag: 'n', prefix: 'wlm', net: NET, offset: 10 }));
    const made = monotonicMs() - t0;
    const target = before.established + more;
    const deadline = monotonicMs() + 120000;
    while (established(zone) < target && monotonicMs() < deadline) await sleep(50);
    const allIn = monotonicMs() - t0;
    const reached = established(zone) - before.established;
    await sleep(3000); // announcements, link-local DAD and its re-announcement
    const cpuUp = cpuMs(zone.pid) - before.cpu;
    const after = { sockets: sockets(zone.pid), rss: rssKiB(zone.pid) };

    // --- 5. query latency at N: a different workload each time
    const names = Array.from({ length: SAMPLES }, (_, i) => `wlm${(i * 7919) % more}.local`);
    const oursN = latency(wire, names, 20);
    const avahiN = latency(wire, Array(SAMPLES).fill('avbase.local'), 60);
    row(`query -> answer, ${COUNT} workloads (p50 / p99)`, pq(ok(oursN)), pq(ok(avahiN)));

    // --- 6. idle
    const c0 = cpuMs(zone.pid);
    await sleep(10000);
    const idle = cpuMs(zone.pid) - c0;

    console.log('');
    console.log(`  ${''.padEnd(52)}${'ontap-zone'.padStart(24)}${'avahi'.padStart(24)}`);
    for (const r of rows) console.log(r);
    console.log('');
    console.log(`  unanswered queries at 1 workload: ours ${lost1[0]}, avahi ${lost1[1]}; at ${COUNT}: ours ${oursN.length - ok(oursN).length}, avahi ${avahiN.length - ok(avahiN).length}`);
    console.log(`  ${more} more workloads made in ${made.toFixed(0)} ms (ip -batch); ${reached} of ${more} established ${allIn.toFixed(0)} ms after the first was made`);
    console.log(`  ontap-zone CPU from making them to 3 s after the last was established: ${cpuUp} ms`);
    console.log(`  ontap-zone sockets ${before.sockets} -> ${after.sockets} (+${after.sockets - before.sockets} for ${more} workloads); RSS ${(before.rss / 1024).toFixed(1)} -> ${(after.rss / 1024).toFixed(1)} MiB`);
    console.log(`  ontap-zone CPU while ${COUNT} workloads sit idle for 10 s: ${idle} ms`);
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        console.error(`cleanup: ${(e as Error).message}`);
      }
    }
    nets.destroy();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
