/**
 * bench/dhcp: time from asking to an IPv4 address in hand, 1 and 64 at once, against the same
 * dnsmasq on a private veth uplink, for
 *   - ontap --dhcp: a macvlan from ontapd with ipv4 "dhcp" (connect to reply; the reply comes
 *     once the address is bound on the device), from a worker process (bench/worker.ts dhcp,
 *     dhcp-burst: all 64 connections from one process, so the row is not node start-ups);
 *   - the CNI macvlan plugin with the CNI dhcp IPAM plugin and its daemon (/usr/lib/cni/dhcp):
 *     the plugin's ADD, exec to exit (device made, lease got, address set);
 *   - busybox udhcpc -q -n in a namespace with a macvlan made beforehand (not counted), its
 *     script setting the address: exec to exit.
 * Needs root; everything runs in throwaway namespaces. Not a timed test: it prints figures.
 *
 *   node dist/bench/dhcp.js     (env BENCH_SAMPLES=40 for the one-at-a-time rows)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestNamespaces, ip, sweepStaleNamespaces } from '../test/helpers/netns.js';
import { TestDaemon, ROOT } from '../test/helpers/ontapd.js';
import { startDnsmasq, type DnsmasqServer } from '../test/helpers/dhcp-server.js';

const WORKER = join(ROOT, 'dist/bench/worker.js');
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? '40');
const CONCURRENT = 64;
const BUSYBOX = '/bin/busybox';
const CNI = '/usr/lib/cni';

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

function run(argv: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<{ ms: number; code: number | null; out: string }> {
  return new Promise((resolve) => {
    const t0 = now();
    const child = spawn(argv[0]!, argv.slice(1), { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.stdin.end(opts.input ?? '');
    child.on('exit', (code) => resolve({ ms: now() - t0, code, out }));
  });
}

async function ontapRow(client: string, socket: string, concurrent: number, each: number): Promise<number[]> {
  const results = await Promise.all(Array.from({ length: concurrent }, () => run(['ip', 'netns', 'exec', client, process.execPath, WORKER, 'dhcp', socket, String(each)])));
  const lat: number[] = [];
  for (const r of results) {
    if (r.code !== 0) throw new Error(`ontap dhcp worker: ${r.out}`);
    lat.push(...(JSON.parse(r.out) as { lat: number[] }).lat.map((us) => us / 1000));
  }
  return lat;
}

/** udhcpc's script: set the address on bound, as a DHCP client must before the workload may use it. */
const SCRIPT = '#!/bin/sh\n[ "$1" = bound ] && ip addr add "$ip/${mask:-24}" dev "$interface"\nexit 0\n';

async function udhcpcRow(nets: TestNamespaces, dir: string, concurrent: number, rounds: number, tag: string): Promise<number[]> {
  const script = join(dir, 'udhcpc.script');
  writeFileSync(script, SCRIPT);
  chmodSync(script, 0o755);
  const lat: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const spaces = Array.from({ length: concurrent }, (_, i) => {
      const ns = nets.add(`u${tag}${r}x${i}`);
      ip('-n', nets.names[0]!, 'link', 'add', `u${i}`, 'link', 'up0', 'type', 'macvlan', 'mode', 'bridge');
      ip('-n', nets.names[0]!, 'link', 'set', `u${i}`, 'netns', ns);
      ip('-n', ns, 'link', 'set', `u${i}`, 'up');
      return { ns, ifname: `u${i}` };
    });
    const results = await Promise.all(spaces.map(({ ns, ifname }) =>
      run(['ip', 'netns', 'exec', ns, BUSYBOX, 'udhcpc', '-q', '-n', '-f', '-i', ifname, '-s', script, '-t', '5', '-T', '1', '-A', '1', '-R'])));
    for (const x of results) {
      if (x.code !== 0) throw new Error(`udhcpc: ${x.out}`);
      lat.push(x.ms);
    }
    for (const { ns } of spaces) {
      ip('netns', 'del', ns);
      nets.names.splice(nets.names.indexOf(ns), 1);
    }
  }
  return lat;
}

async function cniRow(nets: TestNamespaces, socketPath: string, concurrent: number, rounds: number, tag: string): Promise<number[]> {
  const config = JSON.stringify({ cniVersion: '1.0.0', name: 'bench', type: 'macvlan', master: 'up0', mode: 'bridge', ipam: { type: 'dhcp', daemonSocketPath: socketPath } });
  const lat: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const spaces = Array.from({ length: concurrent }, (_, i) => nets.add(`c${tag}${r}x${i}`));
    const env = (ns: string, i: number, command: string): NodeJS.ProcessEnv => ({
      ...process.env, CNI_COMMAND: command, CNI_CONTAINERID: `bench${tag}${r}x${i}`, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_PATH: CNI,
    });
    const host = nets.names[0]!;
    const results = await Promise.all(spaces.map((ns, i) => run(['ip', 'netns', 'exec', host, join(CNI, 'macvlan')], { env: env(ns, i, 'ADD'), input: config })));
    for (const x of results) {
      if (x.code !== 0) throw new Error(`CNI ADD: ${x.out}`);
      lat.push(x.ms);
    }
    await Promise.all(spaces.map((ns, i) => run(['ip', 'netns', 'exec', host, join(CNI, 'macvlan')], { env: env(ns, i, 'DEL'), input: config })));
    for (const ns of spaces) {
      ip('netns', 'del', ns);
      nets.names.splice(nets.names.indexOf(ns), 1);
    }
  }
  return lat;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/dhcp needs root');
  sweepStaleNamespaces();
  const nets = new TestNamespaces();
  const dir = mkdtempSync(join(tmpdir(), 'ontap-bench-dhcp-'));
  let daemon: TestDaemon | undefined;
  let dnsmasq: DnsmasqServer | undefined;
  let cniDaemon: ReturnType<typeof spawn> | undefined;
  try {
    const { host, wire } = nets.uplink();
    const client = nets.add('client');
    dnsmasq = await startDnsmasq({ netns: wire, ifname: 'peer0', address: '10.78.0.1/16', range: ['10.78.1.0', '10.78.200.0'], leaseSeconds: 600, extraArgs: ['--no-ping'] });
    daemon = new TestDaemon(host, ['up0'], ['--verbosity=info', '--family=macvlan', '--max-per-uid=4096']);
    await daemon.start();
    const socket = daemon.socket();
    console.log(`bench/dhcp on ${process.version}, kernel ${spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim()}, dnsmasq on a veth, ${SAMPLES} samples one at a time, ${CONCURRENT} at once`);
    await ontapRow(client, socket, 1, 3); // warm-up

    const rows: Array<[string, number[]]> = [];
    rows.push(['ontap --dhcp: connect -> reply (address bound), 1 at a time', await ontapRow(client, socket, 1, SAMPLES)]);
    const burst: number[] = [];
    for (let round = 0; round < 2; round++) {
      const r = await run(['ip', 'netns', 'exec', client, process.execPath, WORKER, 'dhcp-burst', socket, String(CONCURRENT)]);
      if (r.code !== 0) throw new Error(`ontap dhcp-burst worker: ${r.out}`);
      burst.push(...(JSON.parse(r.out) as { lat: number[] }).lat.map((us) => us / 1000));
      // Their releases, and the devices' deletion, before the next round.
      await new Promise((res) => setTimeout(res, 1500));
    }
    rows.push([`ontap --dhcp: the same, ${CONCURRENT} at once`, burst]);

    const cniSocket = join(dir, 'cni-dhcp.sock');
    if (existsSync(join(CNI, 'dhcp')) && existsSync(join(CNI, 'macvlan'))) {
      cniDaemon = spawn('ip', ['netns', 'exec', host, join(CNI, 'dhcp'), 'daemon', '-socketpath', cniSocket, '-broadcast'], { stdio: 'ignore' });
      for (let t = 0; !existsSync(cniSocket); t++) {
        if (t > 500) throw new Error('the CNI dhcp daemon did not make its socket');
        await new Promise((r) => setTimeout(r, 10));
      }
      rows.push(['CNI macvlan + dhcp IPAM: ADD exec -> exit, 1 at a time', await cniRow(nets, cniSocket, 1, SAMPLES, 'a')]);
      rows.push([`CNI macvlan + dhcp IPAM: the same, ${CONCURRENT} at once`, await cniRow(nets, cniSocket, CONCURRENT, 2, 'b')]);
    } else {
      console.log('(CNI baseline skipped: apt-get install containernetworking-plugins)');
    }
    rows.push(['udhcpc -q -n (device made before): exec -> exit, 1 at a time', await udhcpcRow(nets, dir, 1, SAMPLES, 'a')]);
    rows.push([`udhcpc -q -n: the same, ${CONCURRENT} at once`, await udhcpcRow(nets, dir, CONCURRENT, 2, 'b')]);

    console.log('');
    console.log(`${''.padEnd(64)}${'p50'.padStart(10)}${'p99'.padStart(10)}${'max'.padStart(10)}`);
    for (const [name, xs] of rows) {
      const f = (q: number): string => `${quantile(xs, q).toFixed(1)} ms`.padStart(10);
      console.log(`  ${name.padEnd(62)}${f(0.5)}${f(0.99)}${f(1)}`);
    }
  } finally {
    cniDaemon?.kill('SIGKILL');
    await daemon?.stop();
    await dnsmasq?.stop();
    nets.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
