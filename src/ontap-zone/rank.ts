/**
 * Each link's publishable addresses, kept in the file's order, so that what a workload publishes
 * (its first --max-addresses addresses) is read off the front of its links' lists, and a change
 * further down a list is known not to change the file without looking at anything else. A workload
 * may hold any number of addresses; the cost of a change is a binary search and an array splice,
 * and a change that can reach the file costs a selection of at most --max-addresses entries.
 */
import { AddressFlag } from '../netns/types.js';
import type { AddressClass } from './classify.js';

export type PublishedClass = Exclude<AddressClass, 'none'>;

/**
 * --max-addresses: what one workload publishes at most. A workload needs a link-local address, a
 * few SLAAC/DHCPv6 addresses per prefix (global, ULA; a renumbering doubles them for a while) and
 * an IPv4 address or two; temporary addresses are not published. The kernel's own limit on
 * autoconfigured IPv6 addresses is 16 per link (net.ipv6.conf.*.max_addresses).
 */
export const DEFAULT_MAX_ADDRESSES = 64;

/** Whether an address is usable now: not tentative (DAD running), not dadfailed, not an IPv6 temporary. */
export function usable(family: 4 | 6, flags: number): boolean {
  if (flags & (AddressFlag.tentative | AddressFlag.dadfailed)) return false;
  // IFA_F_TEMPORARY (0x01, IPv6) is IFA_F_SECONDARY for IPv4, where it must publish.
  if (family === 6 && flags & AddressFlag.secondary) return false;
  return true;
}

const CLASS_ORDER: Record<PublishedClass, number> = { wan: 0, lan: 1, local: 2 };
/** (class, family) groups in the file's order: wan/4, wan/6, lan/4, lan/6, local/4, local/6. */
export const GROUPS = 6;
/** Two lists per group: preferred addresses, then deprecated ones. */
const SLOTS = GROUPS * 2;

/**
 * The list an address belongs in (group * 2, + 1 if deprecated), or -1 if it is never published
 * (class none, tentative, dadfailed, temporary).
 */
export function slotOf(family: 4 | 6, cls: AddressClass, flags: number): number {
  if (cls === 'none' || !usable(family, flags)) return -1;
  return (CLASS_ORDER[cls] * 2 + (family === 6 ? 1 : 0)) * 2 + (flags & AddressFlag.deprecated ? 1 : 0);
}

/** One address in one list of one link: IPv4 allows an address twice on a link (two prefix lengths). */
export interface Ranked {
  family: 4 | 6;
  address: string;
  bytes: Uint8Array;
  cls: PublishedClass;
  refs: number;
}

/** Both arrays have the length of one family (every list holds one family). */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** The first index whose entry is not below `bytes`. */
function lowerBound(list: Ranked[], bytes: Uint8Array): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(list[mid]!.bytes, bytes) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One link's publishable addresses, per slot, sorted by address, each address once. */
export class LinkRanks {
  readonly lists: Ranked[][] = Array.from({ length: SLOTS }, () => []);

  /** Counts one more holder of (slot, address); returns the index of a new entry, or -1 if it was there. */
  add(slot: number, a: { family: 4 | 6; address: string; bytes: Uint8Array; cls: PublishedClass }): number {
    const list = this.lists[slot]!;
    const i = lowerBound(list, a.bytes);
    const at = list[i];
    if (at !== undefined && compareBytes(at.bytes, a.bytes) === 0) {
      at.refs++;
      return -1;
    }
    list.splice(i, 0, { family: a.family, address: a.address, bytes: a.bytes, cls: a.cls, refs: 1 });
    return i;
  }

  /** Counts one holder fewer; returns the index of the entry if it went, else -1. */
  remove(slot: number, bytes: Uint8Array): number {
    const list = this.lists[slot]!;
    const i = lowerBound(list, bytes);
    const at = list[i];
    if (at === undefined || compareBytes(at.bytes, bytes) !== 0) return -1;
    if (--at.refs > 0) return -1;
    list.splice(i, 1);
    return i;
  }

  get empty(): boolean {
    return this.lists.every((l) => l.length === 0);
  }
}

export interface Selected {
  entry: Ranked;
  deprecated: boolean;
}

/**
 * The first `max` distinct addresses of a workload whose (up) links have these ranks, in the file's
 * order; deprecated ones only for a group with no preferred address on any of the links. `capped`:
 * there were more.
 *
 * Only the first `max` entries of any one list can be selected (each selected entry is a distinct
 * address), which is why a change at index `max` or later cannot change the result.
 */
export function select(links: LinkRanks[], max: number): { selected: Selected[]; capped: boolean } {
  const selected: Selected[] = [];
  for (let g = 0; g < GROUPS; g++) {
    let lists = links.map((l) => l.lists[g * 2]!).filter((l) => l.length > 0);
    const deprecated = lists.length === 0;
    if (deprecated) lists = links.map((l) => l.lists[g * 2 + 1]!).filter((l) => l.length > 0);
    if (lists.length === 0) continue;
    if (selected.length >= max) return { selected, capped: true };
    if (lists.length === 1) {
      const only = lists[0]!;
      const take = Math.min(only.length, max - selected.length);
      for (let i = 0; i < take; i++) selected.push({ entry: only[i]!, deprecated });
      if (take < only.length) return { selected, capped: true };
      continue;
    }
    // Several links: a k-way merge through a heap of list heads, an address on two links once.
    const heap = new MergeHeap(lists);
    while (!heap.done) {
      if (selected.length >= max) return { selected, capped: true };
      const entry = heap.pop();
      selected.push({ entry, deprecated });
      while (!heap.done && compareBytes(heap.peek().bytes, entry.bytes) === 0) heap.pop();
    }
  }
  return { selected, capped: false };
}

/** A binary min-heap of (list, index) heads, by the address at the head. */
class MergeHeap {
  private readonly heads: Array<{ list: Ranked[]; i: number }>;

  constructor(lists: Ranked[][]) {
    this.heads = lists.map((list) => ({ list, i: 0 }));
    for (let k = (this.heads.length >> 1) - 1; k >= 0; k--) this.down(k);
  }

  get done(): boolean {
    return this.heads.length === 0;
  }

  peek(): Ranked {
    const h = this.heads[0]!;
    return h.list[h.i]!;
  }

  pop(): Ranked {
    const h = this.heads[0]!;
    const entry = h.list[h.i++]!;
    if (h.i >= h.list.length) {
      const last = this.heads.pop()!;
      if (this.heads.length === 0) return entry;
      this.heads[0] = last;
    }
    this.down(0);
    return entry;
  }

  private key(k: number): Uint8Array {
    const h = this.heads[k]!;
    return h.list[h.i]!.bytes;
  }

  private down(k: number): void {
    const n = this.heads.length;
    for (;;) {
      const l = 2 * k + 1;
      const r = l + 1;
      let m = k;
      if (l < n && compareBytes(this.key(l), this.key(m)) < 0) m = l;
      if (r < n && compareBytes(this.key(r), this.key(m)) < 0) m = r;
      if (m === k) return;
      [this.heads[k], this.heads[m]] = [this.heads[m]!, this.heads[k]!];
      k = m;
    }
  }
}
