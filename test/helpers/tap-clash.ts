/**
 * /dev/tapN is named by the tap's ifindex, which is unique only within a network namespace, while
 * /dev is one for all. To make ontapd meet a /dev/tapN that belongs to someone else, another
 * namespace gets taps with every ifindex just above those in ontapd's namespace: the next tap
 * ontapd creates finds its name taken, and ontapd must make a private node (mknod).
 */
import { spawnSync } from 'node:child_process';
import { ip, links, type TestNamespaces } from './netns.js';

export interface TapClash {
  /** The ifindexes taken, first..last. */
  first: number;
  last: number;
  /** Deletes the namespace holding them. */
  remove(): void;
}

export function occupyTapNames(nets: TestNamespaces, ontapdNs: string, kind: 'macvtap' | 'ipvtap', count = 40): TapClash {
  const ns = nets.add('clash');
  const remove = (): void => {
    try {
      ip('netns', 'del', ns);
    } catch {
      // gone already
    }
    nets.names.splice(nets.names.indexOf(ns), 1);
  };
  try {
    // The parent's indexes far above the range, so that only the taps take the low ones.
    ip('-n', ns, 'link', 'add', 'c0', 'index', '100000', 'type', 'veth', 'peer', 'name', 'c1', 'index', '100001');
    const first = Math.max(...links(ontapdNs).map((l) => l.ifindex)) + 1;
    const batch = Array.from({ length: count }, (_, i) => `link add link c0 name ct${i} index ${first + i} type ${kind}`).join('\n');
    const r = spawnSync('ip', ['-n', ns, '-batch', '-'], { input: `${batch}\n`, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip -batch: ${r.stderr}`);
    return { first, last: first + count - 1, remove };
  } catch (e) {
    remove();
    throw e;
  }
}
