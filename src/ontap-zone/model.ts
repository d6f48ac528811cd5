/**
 * What ontap-zone knows of the kernel: per namespace (by its nsid in our namespace), links by
 * ifindex and addresses by (ifindex, address). Fed in socket order by events and dump records alike:
 * each carries the object's whole state, so the last one applied wins.
 *
 * Resyncing without a flush: every entry remembers the tick at which it was last applied. A dump
 * that started at tick T and finished without NLM_F_DUMP_INTR has reported every object that
 * existed; anything of its scope still marked at or before T was neither dumped nor touched by an event
 * since, so it is gone (sweep). Nothing is ever emptied while a dump runs.
 */
import type { Address, Link } from '../netns/types.js';
import { classifyBytes, parseAddress, SCOPE_HOST, type AddressClass } from './classify.js';

/** IFF_UP (linux/if.h). */
const IFF_UP = 0x1;

export interface LinkState {
  ifindex: number;
  ifname: string;
  alias: string | undefined;
  up: boolean;
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

  private changed(ns?: NamespaceState): void {
    this.version++;
    if (ns) ns.version++;
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
    return true;
  }

  removeNamespace(nsid: number): boolean {
    const ns = this.namespaces.get(nsid);
    if (!ns) return false;
    this.namespaces.delete(nsid);
    if (ns.links.size > 0 || ns.addresses.size > 0) this.changed();
    return true;
  }

  /** Links and addresses of a namespace not (or no longer) known are ignored: see touchNamespace. */
  upsertLink(nsid: number, link: Link): void {
    const ns = this.namespaces.get(nsid);
    if (!ns) return;
    const prev = ns.links.get(link.ifindex);
    const alias = link.alias === '' ? undefined : link.alias;
    const up = (link.flags & IFF_UP) !== 0;
    const t = this.next();
    if (prev) {
      // The file names a workload's links in a comment: a rename of a named link changes it too.
      if (prev.alias !== alias || prev.up !== up || (alias !== undefined && prev.ifname !== link.ifname)) this.changed(ns);
      prev.ifname = link.ifname;
      prev.alias = alias;
      prev.up = up;
      prev.touched = t;
      return;
    }
    ns.links.set(link.ifindex, { ifindex: link.ifindex, ifname: link.ifname, alias, up, touched: t });
    if (alias !== undefined) this.changed(ns);
  }

  /** A link left (deleted, or moved to another namespace): its addresses went with it. */
  deleteLink(nsid: number, ifindex: number): void {
    const ns = this.namespaces.get(nsid);
    if (!ns) return;
    this.next();
    const link = ns.links.get(ifindex);
    if (link) {
      ns.links.delete(ifindex);
      if (link.alias !== undefined) this.changed(ns);
    }
    if (ns.addresses.delete(ifindex)) this.changed(ns);
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
      if (prev.flags !== a.flags || prev.scope !== a.scope) this.changed(ns);
      if (prev.scope !== a.scope) prev.cls = classOf(prev.bytes, a.scope);
      prev.flags = a.flags;
      prev.scope = a.scope;
      prev.touched = t;
      return;
    }
    const bytes = parseAddress(a.family, a.address) ?? new Uint8Array(a.family === 4 ? 4 : 16);
    const cls = parseAddress(a.family, a.address) === undefined ? 'none' : classOf(bytes, a.scope);
    byKey.set(key, { ifindex: a.ifindex, family: a.family, address: a.address, prefixLength: a.prefixLength, scope: a.scope, flags: a.flags, touched: t, bytes, cls });
    this.changed(ns);
  }

  deleteAddress(nsid: number, a: Pick<Address, 'ifindex' | 'family' | 'address' | 'prefixLength'>): void {
    const ns = this.namespaces.get(nsid);
    if (!ns) return;
    this.next();
    const byKey = ns.addresses.get(a.ifindex);
    if (!byKey) return;
    if (byKey.delete(addressKey(a))) this.changed(ns);
    if (byKey.size === 0) ns.addresses.delete(a.ifindex);
  }

  /** Forgets the links of nsid last touched at or before `since` (a complete link dump began after tick `since`). */
  sweepLinks(nsid: number, since: number): number {
    const ns = this.namespaces.get(nsid);
    if (!ns) return 0;
    let n = 0;
    for (const [ifindex, link] of ns.links) {
      if (link.touched > since) continue;
      ns.links.delete(ifindex);
      if (link.alias !== undefined) this.changed(ns);
      n++;
    }
    return n;
  }

  sweepAddresses(nsid: number, since: number): number {
    const ns = this.namespaces.get(nsid);
    if (!ns) return 0;
    let n = 0;
    for (const [ifindex, byKey] of ns.addresses) {
      for (const [key, a] of byKey) {
        if (a.touched > since) continue;
        byKey.delete(key);
        this.changed(ns);
        n++;
      }
      if (byKey.size === 0) ns.addresses.delete(ifindex);
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
  snapshot(): Array<{ nsid: number; links: Array<Omit<LinkState, 'touched'>>; addresses: Array<Omit<AddressState, 'touched' | 'bytes' | 'cls'>> }> {
    return [...this.namespaces.values()]
      .sort((a, b) => a.nsid - b.nsid)
      .map((ns) => ({
        nsid: ns.nsid,
        links: [...ns.links.values()].sort((a, b) => a.ifindex - b.ifindex).map(({ touched: _t, ...l }) => l),
        addresses: [...ns.addresses.values()]
          .flatMap((m) => [...m.values()])
          .sort((a, b) => a.ifindex - b.ifindex || a.address.localeCompare(b.address) || a.prefixLength - b.prefixLength)
          .map(({ touched: _t, bytes: _b, cls: _c, ...a }) => a),
      }));
  }
}
