import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

/**
 * Network namespaces for one test file, named ontap-t-<pid>-<n>-<label> so that a later run can
 * tell (by the pid) which ones a crashed run left behind and remove them.
 */
const PREFIX = 'ontap-t-';
let counter = 0;

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes namespaces of earlier test runs whose process is gone. */
export function sweepStaleNamespaces(): void {
  if (!existsSync('/run/netns')) return;
  for (const name of readdirSync('/run/netns')) {
    const m = name.startsWith(PREFIX) ? /^ontap-t-(\d+)-/.exec(name) : null;
    if (m && !pidAlive(Number(m[1]))) {
      try { ip('netns', 'del', name); } catch { /* raced */ }
    }
  }
}

export class TestNamespaces {
  readonly names: string[] = [];

  add(label: string): string {
    const name = `${PREFIX}${process.pid}-${++counter}-${label}`;
    ip('netns', 'add', name);
    this.names.push(name);
    ip('-n', name, 'link', 'set', 'lo', 'up');
    return name;
  }

  /** A veth pair: `uplink` in ns, `peer` in peerNs. Both up, IPv6 DAD off to keep tests quiet. */
  veth(ns: string, uplink: string, peerNs: string, peer: string): void {
    ip('-n', ns, 'link', 'add', uplink, 'type', 'veth', 'peer', 'name', peer, 'netns', peerNs);
    ip('-n', ns, 'link', 'set', uplink, 'up');
    ip('-n', peerNs, 'link', 'set', peer, 'up');
  }

  /**
   * The usual test uplink: namespace "host" (where ontapd runs) whose up0 is a veth to peer0 in
   * namespace "wire" (the network the uplink leads to).
   */
  uplink(): { host: string; wire: string } {
    const host = this.add('host');
    const wire = this.add('wire');
    this.veth(host, 'up0', wire, 'peer0');
    return { host, wire };
  }

  /** Deleting a namespace deletes every device in it; runs even when tests failed. */
  destroy(): void {
    for (const name of this.names.splice(0).reverse()) {
      try { ip('netns', 'del', name); } catch { /* already gone */ }
    }
  }
}

export interface LinkJson {
  ifname: string;
  ifindex: number;
  flags: string[];
  address?: string;
  ifalias?: string;
  group?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
  link_netnsid?: number;
  num_tx_queues?: number;
}

export function links(ns: string): LinkJson[] {
  return JSON.parse(ip('-n', ns, '-j', '-d', 'link', 'show')) as LinkJson[];
}

export function linksOfKind(ns: string, kind: string): LinkJson[] {
  return links(ns).filter((l) => l.linkinfo?.info_kind === kind);
}

/** Polls until fn() is true: devices are released asynchronously, in batches. */
export async function eventually(what: string, fn: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
