/**
 * A real DHCP server in a test's namespace: Debian's dnsmasq, serving one interface, its lease file
 * in a private directory, stopped (and its files removed) by stop().
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ip } from './netns.js';

export interface DnsmasqLease {
  expires: number;
  mac: string;
  address: string;
  hostname: string | undefined;
  clientId: string | undefined;
}

export interface Dnsmasq {
  pid: number;
  leaseFile: string;
  log(): string;
  leases(): DnsmasqLease[];
  waitForLease(pred: (l: DnsmasqLease) => boolean, timeoutMs: number): Promise<DnsmasqLease>;
  waitForNoLease(pred: (l: DnsmasqLease) => boolean, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

export interface DnsmasqOptions {
  netns: string;
  ifname: string;
  /** The server's own address on ifname, with its prefix: added here. */
  address: string;
  range: [string, string];
  /** dnsmasq's least is 120. */
  leaseSeconds: number;
  extraArgs?: string[];
}

/** dnsmasq's lease file: "EXPIRY MAC ADDRESS HOSTNAME CLIENTID", '*' for none. */
export function parseDnsmasqLeases(text: string): DnsmasqLease[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => {
    const [expires, mac, address, hostname, clientId] = l.split(' ');
    return { expires: Number(expires), mac: mac!, address: address!, hostname: hostname === '*' ? undefined : hostname, clientId: clientId === '*' || clientId === undefined ? undefined : clientId };
  });
}

function listening67(netns: string): boolean {
  const r = spawnSync('ip', ['netns', 'exec', netns, 'ss', '-Hlun', 'sport = :67'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '';
}

export async function startDnsmasq(opts: DnsmasqOptions): Promise<Dnsmasq> {
  const dir = mkdtempSync(join(tmpdir(), 'ontap-t-dnsmasq-'));
  const leaseFile = join(dir, 'leases');
  const netmask = prefixToMask(Number(opts.address.split('/')[1]));
  if (!ip('-n', opts.netns, '-4', 'addr', 'show', 'dev', opts.ifname).includes(` ${opts.address} `)) {
    ip('-n', opts.netns, 'addr', 'add', opts.address, 'dev', opts.ifname);
  }
  let output = '';
  const child: ChildProcess = spawn('ip', ['netns', 'exec', opts.netns, 'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0',
    '--user=root', '--group=root', `--interface=${opts.ifname}`, '--bind-interfaces',
    `--dhcp-range=${opts.range[0]},${opts.range[1]},${netmask},${opts.leaseSeconds}`, `--dhcp-leasefile=${leaseFile}`,
    '--log-dhcp', '--dhcp-authoritative', '--log-facility=-', '--no-ping', ...(opts.extraArgs ?? [])],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  let gone = false;
  void exited.then(() => (gone = true));
  const t0 = Date.now();
  while (!listening67(opts.netns)) {
    if (gone) throw new Error(`dnsmasq exited: ${output}`);
    if (Date.now() - t0 > 10000) {
      child.kill('SIGKILL');
      throw new Error(`dnsmasq did not bind port 67 within 10 s: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const leases = (): DnsmasqLease[] => {
    try {
      return parseDnsmasqLeases(readFileSync(leaseFile, 'utf8'));
    } catch {
      return [];
    }
  };
  const poll = async <T>(what: string, fn: () => T | undefined, timeoutMs: number): Promise<T> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = fn();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`${what} within ${timeoutMs} ms; leases: ${JSON.stringify(leases())}\n${output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return {
    pid: child.pid!,
    leaseFile,
    log: () => output,
    leases,
    waitForLease: (pred, timeoutMs) => poll('no such lease', () => leases().find(pred), timeoutMs),
    waitForNoLease: async (pred, timeoutMs) => {
      await poll('the lease is still there', () => (leases().some(pred) ? undefined : true), timeoutMs);
    },
    stop: async () => {
      if (!gone) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function prefixToMask(n: number): string {
  const m = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
  return [m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255].join('.');
}
