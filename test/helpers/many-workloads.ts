/**
 * Many macvlan workloads on up0 quickly, the way ontapd would leave them but without it: one
 * namespace each (under /run/netns, so ontap-zone can open it), given an nsid in the uplink's
 * namespace, the device named by its alias, one IPv4 address. A handful of `ip -batch` runs, not
 * a few processes per workload. Names are ontap-t-PID-..., so sweepStaleNamespaces() removes what a
 * crashed run left.
 */
import { spawn, spawnSync } from 'node:child_process';

export interface ManyWorkloads {
  namespaces: string[];
  /** The workload names (device aliases), in order. */
  names: string[];
  /** Each one's IPv4 address. */
  addresses: string[];
  destroy(): void;
}

function must(args: string[], input: string): void {
  const r = spawnSync(args[0]!, args.slice(1), { input, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
}

/** Runs `ip -n NS -batch -` for many namespaces, `parallel` at a time. */
export async function batchEach(items: Array<{ ns: string; lines: string[] }>, parallel = 8): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await new Promise<void>((resolve, reject) => {
        const c = spawn('ip', ['-n', item.ns, '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
        let err = '';
        c.stderr.on('data', (d: Buffer) => (err += d.toString()));
        c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ip -n ${item.ns} -batch: ${code}: ${err}`))));
        c.stdin.end(item.lines.join('\n') + '\n');
      });
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

/**
 * `count` workloads on `host`'s up0: names PREFIX0..., addresses in `net` (a /16 given as "A.B"),
 * the i-th A.B.0.10 + offset + i. `tag` keeps the namespace names unique within this process.
 * `bare`: the devices are left down, without alias or address (the caller starts them).
 */
export async function createWorkloads(host: string, count: number, opts: { tag: string; prefix: string; net: string; offset?: number; bare?: boolean; parallel?: number }): Promise<ManyWorkloads> {
  const namespaces = Array.from({ length: count }, (_, i) => `ontap-t-${process.pid}-${opts.tag}${i}`);
  const names = Array.from({ length: count }, (_, i) => `${opts.prefix}${i}`);
  const at = (i: number): number => 10 + (opts.offset ?? 0) + i;
  const addresses = Array.from({ length: count }, (_, i) => `${opts.net}.${at(i) >> 8}.${at(i) & 255}`);
  const w: ManyWorkloads = {
    namespaces, names, addresses,
    destroy: () => {
      spawnSync('ip', ['-batch', '-', '-force'], { input: namespaces.map((n) => `netns del ${n}`).join('\n') + '\n', stdio: ['pipe', 'ignore', 'ignore'] });
    },
  };
  try {
    must(['ip', '-batch', '-'], namespaces.map((ns) => `netns add ${ns}`).join('\n') + '\n');
    must(['ip', '-n', host, '-batch', '-'], namespaces.flatMap((ns) => [
      `link add link up0 name w0 netns ${ns} type macvlan mode bridge`,
      `netns set ${ns} auto`,
    ]).join('\n') + '\n');
    await batchEach(namespaces.map((ns, i) => ({
      ns,
      lines: opts.bare ? ['link set lo up'] : ['link set lo up', `link set w0 alias ${names[i]} up`, `addr add ${addresses[i]}/16 dev w0`],
    })), opts.parallel ?? 8);
  } catch (e) {
    w.destroy();
    throw e;
  }
  return w;
}
