/**
 * Looking at a running workload from outside: its credentials, its namespaces, its address, and a
 * page fetched from it over the network (busybox wget in another namespace).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { eventually } from './netns.js';
import { ONTAP } from './ontapd.js';

/** busybox-static: httpd stands in for darkhttpd (not packaged in Debian), wget fetches from it. */
export const BUSYBOX = '/bin/busybox';

export function hasBusyboxApplets(...applets: string[]): boolean {
  const r = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' });
  return r.status === 0 && applets.every((a) => r.stdout.split('\n').includes(a));
}

/** /proc/PID/status as fields. */
export function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(\w+):\s*(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** The capability sets that must all equal one mask for "holds only these capabilities". */
export const CAP_SETS = ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'] as const;
export const CAP_NET_BIND_SERVICE = '0000000000000400';

/** argv run in some of PID's namespaces (nsenter flags such as -n, -u). */
export function nsenter(pid: number, flags: string[], argv: string[]): string {
  const r = spawnSync('nsenter', ['-t', String(pid), ...flags, '--', ...argv], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`nsenter ${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** True once something listens on TCP port `port` in PID's network namespace. */
export function listening(pid: number, port: number): boolean {
  try {
    return new RegExp(`:${port}\\b`).test(nsenter(pid, ['-n'], ['ss', '-ltnH']));
  } catch {
    return false;
  }
}

/**
 * The first link-local address that is no longer tentative in the namespace `prefix` runs `ip`
 * in (e.g. ['ip', 'netns', 'exec', NS] or ['nsenter', '-t', PID, '-n', '--']).
 */
export async function usableLinkLocal(prefix: string[], timeoutMs = 5000): Promise<string> {
  let address = '';
  await eventually(`a usable link-local address (${prefix.join(' ')})`, () => {
    const r = spawnSync(prefix[0]!, [...prefix.slice(1), 'ip', '-j', '-6', 'addr', 'show', 'scope', 'link'], { encoding: 'utf8' });
    const addrs = JSON.parse(r.stdout || '[]') as Array<{ addr_info: Array<{ local: string; tentative?: boolean }> }>;
    address = addrs.flatMap((l) => l.addr_info).find((x) => x.local.startsWith('fe80:') && !x.tentative)?.local ?? '';
    return address !== '';
  }, timeoutMs);
  return address;
}

/**
 * GET http://[address%ifname]/path from network namespace ns, once ns's own link-local address is
 * usable (a tentative one cannot be a source). Returns the body; throws on failure.
 */
export async function fetchOverLinkLocal(ns: string, ifname: string, address: string, path = '/index.html'): Promise<string> {
  await usableLinkLocal(['ip', 'netns', 'exec', ns]);
  const r = spawnSync('ip', ['netns', 'exec', ns, BUSYBOX, 'wget', '-q', '-O', '-', `http://[${address}%${ifname}]${path}`], { encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0) throw new Error(`wget from ${ns}: ${r.status} ${r.signal ?? ''} ${r.stderr}`);
  return r.stdout;
}

/**
 * `ontap -t TYPE -n NAME SOCKET` in namespace ns, its device given `cidr`, held until the returned
 * process is killed. Resolves with the holder and the device's name once the address is on it.
 */
export async function startAddressedWorkload(ns: string, type: string, name: string, socket: string, cidr: string,
  opts: { untilStdinCloses?: boolean } = {}): Promise<{ holder: ChildProcess; ifname: string }> {
  // untilStdinCloses: the command ends by itself, exit 0, when the holder's stdin is closed.
  const rest = opts.untilStdinCloses === true ? 'read _ ; exit 0' : 'exec sleep 600';
  const holder = spawn('ip', ['netns', 'exec', ns, process.execPath, ONTAP, '-t', type, '-n', name, socket, '--',
    'sh', '-c', `ip addr add ${cidr} dev "$ONTAP_IFNAME" && echo "ifname=$ONTAP_IFNAME" && ${rest}`],
  { stdio: [opts.untilStdinCloses === true ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const ifname = await new Promise<string>((resolve, reject) => {
    let out = '';
    holder.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ifname=(\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    holder.on('exit', (code) => reject(new Error(`ontap exited with ${code}`)));
  });
  return { holder, ifname };
}
