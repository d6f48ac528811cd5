/**
 * What ontap-zone knows of the kernel: per namespace (by its nsid in our namespace), links by
 * ifindex and addresses by (ifindex, address). Fed in socket order by events and dump records alike:
 * each carries the object's whole state, so the last one applied wins.
 *
 * Resyncing without a flush: every entry remembers the tick at which it was last applied. A dump
 * that started at tick T and finished without NLM_F_DUMP_INTR has reported every object that
 * existed; anything of its scope still marked at or before T was neither dumped nor touched by an event
 * since, so it is gone (sweep). Nothing is ever emptied while a dump runs.
 *
 * Versions: a namespace's version (and the model's) moves only for a change that can change the
 * file, and the workload (alias) it concerns remembers that version. Each link's publishable
 * addresses are kept sorted (rank.ts); an address added or removed at index maxAddresses or later of
 * its list cannot change what its workload publishes, so it moves no version and costs no write.
 */
import type { Address, Link } from '../netns/types.js';
import { classifyBytes, parseAddress, SCOPE_HOST, type AddressClass } from './classify.js';
import { DEFAULT_MAX_ADDRESSES, LinkRanks, slotOf, type PublishedClass } from './rank.js';

/** IFF_UP, IFF_RUNNING (linux/if.h). */
const IFF_UP = 0x1;
const IFF_RUNNING = 0x40;

export interface LinkState {
  ifindex: number;
  ifname: string;
  alias: string | undefined;
  up: boolean;
  /** IFF_RUNNING: it has a carrier (a macvlan or ipvlan loses it with its uplink's). */
  running: boolean;
  touched: number;
}

export interface AddressState {
  ifindex: number;
  family: 4 | 6;
  address: string;
  prefixLength: number;
  scope: number;
  flags: number;
  touched: number;
  /** Parsed once (the text of a key never changes). */
  bytes: Uint8Array;
  /** classifyAddress of address and scope, kept up to date with scope. */
  cls: AddressClass;
  /** Its list in the link's ranks (slotOf), or -1. */
  slot: number;
}

/** The links of one namespace that carry one alias. */
export interface WorkloadState {
  links: Set<number>;
  /** The namespace's version at the last change of this workload that can change the file. */
  version: number;
}

function classOf(bytes: Uint8Array, scope: number): AddressClass {
  return scope >= SCOPE_HOST ? 'none' : classifyBytes(bytes);
}

let instances = 0;

export class NamespaceState {
  /** Unique per NamespaceState: an nsid reused by another namespace starts a new one. */
  readonly instance = ++instances;
  readonly links = new Map<number, LinkState>();
  /** ifindex -> address key -> address. */
  readonly addresses = new Map<number, Map<string, AddressState>>();
  /** ifindex -> the link's publishable addresses, sorted (kept beside `addresses`). */
  readonly ranks = new Map<number, LinkRanks>();
  /** alias -> its links. */
  readonly workloads = new Map<string, WorkloadState>();
  /**
   * The raw host names (one character per byte) of the UTS namespaces related to this one, sorted
   * (uts-tracker.ts). Each names every link of the namespace.
   */
  hostnames: readonly string[] = [];
  touched: number;
  /** Bumped with every change in this namespace that can change the file (publish caches by it). */
  version = 0;

  constructor(readonly nsid: number, tick: number) {
    this.touched = tick;
  }

  addressCount(): number {
    let n = 0;
    for (const m of this.addresses.values()) n += m.size;
    return n;
  }
}

/**
 * IPv4 allows one address twice on a link with different prefix lengths; IPv6 allows an address
 * once per link.
 */
export function addressKey(a: { family: 4 | 6; address: string; prefixLength: number }): string {
  return a.family === 4 ? `${a.address}/${a.prefixLength}` : a.address;
}

export class ZoneModel {
  readonly namespaces = new Map<number, NamespaceState>();
  private clock = 0;
  /** Bumped whenever something that can change the published file changes. */
  version = 0;
  /** Bumped when a namespace or a link appears: then processes may have joined (uts-tracker.ts). */
  structure = 0;

  /**
   * Moves when either does: what the watcher tells the service about (a new namespace without a
   * named link cannot change the file, but it can give a known host name a namespace to name).
   */
  get changes(): number {
    return this.version + this.structure;
  }
  /** What one workload publishes at most (publish() reads it here). */
  readonly maxAddresses: number;

  constructor(opts: { maxAddresses?: number | undefined } = {}) {
    this.maxAddresses = opts.maxAddresses ?? DEFAULT_MAX_ADDRESSES;
  }

  /**
   * The current tick; every apply is stamped with a newer one. A dump that starts now sweeps, when
   * it completes, what is still stamped at or before this value.
   */
  get tick(): number {
    return this.clock;
  }

  private next(): number {
    return ++this.clock;
  }

  /** A change in ns that can change the file; `alias`: the workload it concerns. */
  private changed(ns?: NamespaceState, alias?: string): void {
    this.version++;
    if (!ns) return;
    ns.version++;
    if (alias === undefined) return;
    const w = ns.workloads.get(alias);
    if (w) w.version = ns.version;
  }

  /**
   * An address of link `ifindex` changed where its workload reads: the workload, if the link is
   * named and up; the namespace, if it has host names (they name every link).
   */
  private addressChanged(ns: NamespaceState, ifindex: number): void {
    const link = ns.links.get(ifindex);
    if (link?.alias !== undefined && link.up) this.changed(ns, link.alias);
    else if (ns.hostnames.length > 0 && link?.up) this.changed(ns);
  }

  /** The host names related to namespace `nsid` (sorted, no repeats); true if they changed. */
  setHostnames(nsid: number, names: readonly string[]): boolean {
    const ns = this.namespaces.get(nsid);
    if (!ns) return false;
    if (ns.hostnames.length === names.length && ns.hostnames.every((n, i) => n === names[i])) return false;
    ns.hostnames = [...names];
    this.changed(ns);
    return true;
  }

  private joinWorkload(ns: NamespaceState, alias: string, ifindex: number): void {
    let w = ns.workloads.get(alias);
    if (!w) ns.workloads.set(alias, (w = { links: new Set(), version: 0 }));
    w.links.add(ifindex);
  }

  private leaveWorkload(ns: NamespaceState, alias: string, ifindex: number): void {
    const w = ns.workloads.get(alias);
    if (!w) return;
    w.links.delete(ifindex);
    if (w.links.size === 0) ns.workloads.delete(alias);
  }

  /** Adds the namespace if unknown; marks it touched. Returns true if it was new. */
  touchNamespace(nsid: number): boolean {
    const t = this.next();
    const ns = this.namespaces.get(nsid);
    if (ns) {
      ns.touched = t;
      return false;
    }
    this.namespaces.set(nsid, new NamespaceState(nsid, t));
    this.structure++;
    return true;
  }

  removeNamespace(nsid: number): boolean {
    const ns = this.namespaces.get(nsid);
    if (!ns) return false;
    this.namespaces.delete(nsid);
    if (ns.workloads.size > 0) this.changed();
    return true;
  }

  /** Links and addresses of a namespace not (or no longer) known are ignored: see touchNamespace. */
  upsertLink(nsid: number, link: Link): void {
    const ns = this.namespaces.get(nsid);
    if (!ns) return;
    const prev = ns.links.get(link.ifindex);
    const alias = link.alias === '' ? undefined : link.alias;
    const up = (link.flags & IFF_UP) !== 0;
    const running = (link.flags & IFF_RUNNING) !== 0;
    const t = this.next();
    if (prev) {
      if (prev.alias !== alias) {
        if (prev.alias !== undefined) {
          this.changed(ns, prev.alias);
          this.leaveWorkload(ns, prev.alias, link.ifindex);
        }
        if (alias !== undefined) this.joinWorkload(ns, alias, link.ifindex);
      }
      // The file names a workload's links in a comment: a rename of a named link changes it too.
      // The carrier does not change the file, but the mDNS responders follow it (RFC 6762 §13).
      const moved = prev.alias !== alias || prev.up !== up || prev.running !== running || prev.ifname !== link.ifname;
      if (alias !== undefined && moved) this.changed(ns, alias);
      else if (moved && ns.hostnames.length > 0) this.changed(ns);
      prev.ifname = link.ifname;
      prev.alias = alias;
      prev.up = up;
      prev.running = running;
      prev.touched = t;
      return;
    }
    ns.links.set(link.ifindex, { ifindex: link.ifindex, ifname: link.ifname, alias, up, running, touched: t });
    this.structure++;
    if (alias !== undefined) {
      this.joinWorkload(ns, alias, link.ifindex);
      this.changed(ns, alias);
    } else if (ns.hostnames.length > 0) {
      this.changed(ns);
    }
  }

  /** Forgets a link (its workload changes if it was named). */
  private dropLink(ns: NamespaceState, link: LinkState): void {
    ns.links.delete(link.ifindex);
    if (link.alias === undefined) {
      if (ns.hostnames.length > 0) this.changed(ns);
      return;
    }
    this.changed(ns, link.alias);
    this.leaveWorkload(ns, link.alias, link.ifindex);
  }

  /** A link left (deleted, or moved to another namespace): its addresses went with it. */
  deleteLink(nsid: number, ifindex: number): void {
    const ns = this.namespaces.get(nsid);
    if (!ns) return;
    this.next();
    const link = ns.links.get(ifindex);
    if (link) this.dropLink(ns, link);
    ns.addresses.delete(ifindex);
    ns.ranks.delete(ifindex);
  }

  /** Moves an address to another list of its link's ranks; true if that can change the file. */
  private rerank(ns: NamespaceState, a: AddressState, slot: number): boolean {
    if (slot === a.slot) return false;
    let ranks = ns.ranks.get(a.ifindex);
    let at = -1;
    if (a.slot >= 0 && ranks) {
      at = ranks.remove(a.slot, a.bytes);
      if (ranks.empty) ns.ranks.delete(a.ifindex);
    }
    let relevant = at >= 0 && at < this.maxAddresses;
    a.slot = slot;
    if (slot >= 0) {
      ranks = ns.ranks.get(a.ifindex);
      if (!ranks) ns.ranks.set(a.ifindex, (ranks = new LinkRanks()));
      at = ranks.add(slot, { family: a.family, address: a.address, bytes: a.bytes, cls: a.cls as PublishedClass });
      relevant ||= at >= 0 && at < this.maxAddresses;
    }
    return relevant;
  }

  upsertAddress(nsid: number, a: Address): void {
    const ns = this.namespaces.get(nsid);
    if (!ns) return;
    let byKey = ns.addresses.get(a.ifindex);
    if (!byKey) {
      byKey = new Map();
      ns.addresses.set(a.ifindex, byKey);
    }
    const key = addressKey(a);
    const prev = byKey.get(key);
    const t = this.next();
    if (prev) {
      if (prev.scope !== a.scope) prev.cls = classOf(prev.bytes, a.scope);
      prev.flags = a.flags;
      prev.scope = a.scope;
      prev.touched = t;
      // Flags that leave it in its list (IFA_F_PERMANENT, lifetimes) do not change the file.
      if (this.rerank(ns, prev, slotOf(prev.family, prev.cls, prev.flags))) this.addressChanged(ns, a.ifindex);
      return;
    }
    const parsed = parseAddress(a.family, a.address);
    const bytes = parsed ?? new Uint8Array(a.family === 4 ? 4 : 16);
    const cls = parsed === undefined ? 'none' : classOf(bytes, a.scope);
    const entry: AddressState = { ifindex: a.ifindex, family: a.family, address: a.address, prefixLength: a.prefixLength, scope: a.scope, flags: a.flags, touched: t, bytes, cls, slot: -1 };
    byKey.set(key, entry);
    if (this.rerank(ns, entry, slotOf(a.family, cls, a.flags))) this.addressChanged(ns, a.ifindex);
  }

  /** Forgets an address (byKey is its link's map). */
  private dropAddress(ns: NamespaceState, byKey: Map<string, AddressState>, key: string, a: AddressState): void {
    byKey.delete(key);
    if (byKey.size === 0) ns.addresses.delete(a.ifindex);
    if (this.rerank(ns, a, -1)) this.addressChanged(ns, a.ifindex);
  }

  deleteAddress(nsid: number, a: Pick<Address, 'ifindex' | 'family' | 'address' | 'prefixLength'>): void {
    const ns = this.namespaces.get(nsid);
    if (!ns) return;
    this.next();
    const byKey = ns.addresses.get(a.ifindex);
    if (!byKey) return;
    const key = addressKey(a);
    const entry = byKey.get(key);
    if (entry) this.dropAddress(ns, byKey, key, entry);
  }

  /** Forgets the links of nsid last touched at or before `since` (a complete link dump began after tick `since`). */
  sweepLinks(nsid: number, since: number): number {
    const ns = this.namespaces.get(nsid);
    if (!ns) return 0;
    let n = 0;
    for (const link of [...ns.links.values()]) {
      if (link.touched > since) continue;
      this.dropLink(ns, link);
      n++;
    }
    return n;
  }

  sweepAddresses(nsid: number, since: number): number {
    const ns = this.namespaces.get(nsid);
    if (!ns) return 0;
    let n = 0;
    for (const byKey of [...ns.addresses.values()]) {
      for (const [key, a] of [...byKey]) {
        if (a.touched > since) continue;
        this.dropAddress(ns, byKey, key, a);
        n++;
      }
    }
    return n;
  }

  /** Forgets namespaces last touched at or before `since` (a complete nsid dump began after tick `since`). */
  sweepNamespaces(since: number): number[] {
    const gone: number[] = [];
    for (const [nsid, ns] of this.namespaces) {
      if (ns.touched > since) continue;
      this.removeNamespace(nsid);
      gone.push(nsid);
    }
    return gone;
  }

  /** A plain copy for tests and comparisons: nsid -> links and addresses, without ticks. */
  snapshot(): Array<{ nsid: number; links: Array<Omit<LinkState, 'touched'>>; addresses: Array<Omit<AddressState, 'touched' | 'bytes' | 'cls' | 'slot'>> }> {
    return [...this.namespaces.values()]
      .sort((a, b) => a.nsid - b.nsid)
      .map((ns) => ({
        nsid: ns.nsid,
        links: [...ns.links.values()].sort((a, b) => a.ifindex - b.ifindex).map(({ touched: _t, ...l }) => l),
        addresses: [...ns.addresses.values()]
          .flatMap((m) => [...m.values()])
          .sort((a, b) => a.ifindex - b.ifindex || a.address.localeCompare(b.address) || a.prefixLength - b.prefixLength)
          .map(({ touched: _t, bytes: _b, cls: _c, slot: _s, ...a }) => a),
      }));
  }
}
