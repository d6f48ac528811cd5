/**
 * From the model to what is published: which workloads get names, with which addresses. A pure
 * function of the model (and the domain), so the same kernel state always publishes the same thing,
 * whatever order it was learnt in. The rules are documented in docs/ontap-zone.8.md.
 */
import { DNS_LABEL, DNS_LABEL_RULE } from '../protocol/messages.js';
import { AddressFlag } from '../netns/types.js';
import type { AddressClass } from './classify.js';
import type { NamespaceState, ZoneModel } from './model.js';

export type PublishedClass = Exclude<AddressClass, 'none'>;

export interface PublishedAddress {
  family: 4 | 6;
  address: string;
  bytes: Uint8Array;
  cls: PublishedClass;
  deprecated: boolean;
}

export interface Workload {
  name: string;
  nsid: number;
  /** Changes whenever anything of the workload's namespace does (render caches by it). */
  revision: string;
  /** The links carrying the name (one workload may hold several devices in its namespace). */
  links: Array<{ ifindex: number; ifname: string }>;
  /** Sorted: class, family, address bytes. Deprecated ones only where the rule keeps them. At most maxAddresses. */
  addresses: PublishedAddress[];
  /** It had more addresses to publish than maxAddresses: `addresses` holds the first ones. */
  capped: boolean;
}

export type ProblemKind = 'invalid-name' | 'reserved-name' | 'collision';

export interface Problem {
  kind: ProblemKind;
  /** The alias as found (for collisions, the shared name). */
  name: string;
  /** Where it was found: "nsid/ifname", sorted. */
  where: string[];
  detail: string;
}

export interface Publication {
  /** Sorted by name. */
  workloads: Workload[];
  /** Sorted by kind, name. */
  problems: Problem[];
}

export interface PublishOptions {
  domain: string;
  /** Labels a workload may not take (the sub-zone labels, the name server's label). */
  reserved: ReadonlySet<string>;
  /** Addresses one workload may publish (default DEFAULT_MAX_ADDRESSES). */
  maxAddresses?: number;
}

/**
 * --max-addresses: what one workload publishes at most. A workload needs a link-local address, a
 * few SLAAC/DHCPv6 addresses per prefix (global, ULA; a renumbering doubles them for a while) and
 * an IPv4 address or two; temporary addresses are not published. The kernel's own limit on
 * autoconfigured IPv6 addresses is 16 per link (net.ipv6.conf.*.max_addresses).
 */
export const DEFAULT_MAX_ADDRESSES = 64;

/** The longest name we publish is NAME.wan.DOMAIN (NAME.lan.DOMAIN is as long). */
export function longestName(name: string, domain: string): string {
  return `${name}.wan.${domain}`;
}

/** RFC 1035: 255 octets on the wire, i.e. 253 characters in text without the final dot. */
const MAX_NAME = 253;

/**
 * Why `alias` cannot be a workload name under `domain`, or undefined if it can. The rule is
 * ontap(1)'s --name rule; nothing is rewritten (no lower-casing), so a name is published exactly
 * as the workload asked for it or not at all.
 */
export function nameProblem(alias: string, opts: PublishOptions): { kind: ProblemKind; detail: string } | undefined {
  if (!DNS_LABEL.test(alias)) return { kind: 'invalid-name', detail: `not a DNS label (${DNS_LABEL_RULE})` };
  if (opts.reserved.has(alias)) return { kind: 'reserved-name', detail: `"${alias}" is reserved under ${opts.domain}` };
  if (longestName(alias, opts.domain).length > MAX_NAME) return { kind: 'invalid-name', detail: `${longestName(alias, opts.domain)} is longer than ${MAX_NAME} characters` };
  return undefined;
}

/** Whether an address is usable now: not tentative (DAD running), not dadfailed, not an IPv6 temporary. */
export function usable(family: 4 | 6, flags: number): boolean {
  if (flags & (AddressFlag.tentative | AddressFlag.dadfailed)) return false;
  // IFA_F_TEMPORARY (0x01, IPv6) is IFA_F_SECONDARY for IPv4, where it must publish.
  if (family === 6 && flags & AddressFlag.secondary) return false;
  return true;
}

const CLASS_ORDER: Record<PublishedClass, number> = { wan: 0, lan: 1, local: 2 };

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

export function compareAddresses(a: PublishedAddress, b: PublishedAddress): number {
  return CLASS_ORDER[a.cls] - CLASS_ORDER[b.cls] || a.family - b.family || compareBytes(a.bytes, b.bytes);
}

/**
 * Deprecated addresses (preferred lifetime over) are published only for a (class, family) that has
 * no preferred address: during a renumbering new connections go to the new prefix, and a workload
 * left with only deprecated addresses stays reachable.
 */
function dropShadowedDeprecated(addrs: PublishedAddress[]): PublishedAddress[] {
  const preferred = new Set(addrs.filter((a) => !a.deprecated).map((a) => `${a.cls}/${a.family}`));
  return addrs.filter((a) => !a.deprecated || !preferred.has(`${a.cls}/${a.family}`));
}

function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Claim {
  links: Array<{ ifindex: number; ifname: string }>;
  addresses: PublishedAddress[];
  capped: boolean;
}

/** One namespace's part of the publication, recomputed only when the namespace changed. */
interface NamespacePart {
  instance: number;
  version: number;
  claims: Map<string, Claim>;
  invalid: Array<{ kind: ProblemKind; name: string; where: string; detail: string }>;
}

/** Per-namespace results of publish(), reused while a namespace's version stays the same. */
export class PublishCache {
  readonly parts = new Map<number, NamespacePart>();
}

function publishNamespace(ns: NamespaceState, opts: PublishOptions): NamespacePart {
  const part: NamespacePart = { instance: ns.instance, version: ns.version, claims: new Map(), invalid: [] };
  const links = new Map<string, Array<{ ifindex: number; ifname: string; up: boolean }>>();
  for (const link of ns.links.values()) {
    if (link.alias === undefined) continue;
    const bad = nameProblem(link.alias, opts);
    if (bad) {
      part.invalid.push({ kind: bad.kind, name: link.alias, where: `${ns.nsid}/${link.ifname}`, detail: bad.detail });
      continue;
    }
    let list = links.get(link.alias);
    if (!list) links.set(link.alias, (list = []));
    list.push({ ifindex: link.ifindex, ifname: link.ifname, up: link.up });
  }
  for (const [name, list] of links) {
    // The same address on two links of one workload is published once.
    const unique = new Map<string, PublishedAddress>();
    for (const link of list) {
      // A link that is not administratively up carries no traffic: its addresses are not published.
      if (!link.up) continue;
      for (const a of ns.addresses.get(link.ifindex)?.values() ?? []) {
        if (a.cls === 'none' || !usable(a.family, a.flags)) continue;
        const pa: PublishedAddress = { family: a.family, address: a.address, bytes: a.bytes, cls: a.cls, deprecated: (a.flags & AddressFlag.deprecated) !== 0 };
        const key = `${a.family}/${a.address}`;
        const prev = unique.get(key);
        if (!prev || (prev.deprecated && !pa.deprecated)) unique.set(key, pa);
      }
    }
    const addresses = dropShadowedDeprecated([...unique.values()]).sort(compareAddresses);
    const max = opts.maxAddresses ?? DEFAULT_MAX_ADDRESSES;
    part.claims.set(name, {
      links: list.map(({ ifindex, ifname }) => ({ ifindex, ifname })).sort((a, b) => a.ifindex - b.ifindex),
      addresses: addresses.length > max ? addresses.slice(0, max) : addresses,
      capped: addresses.length > max,
    });
  }
  return part;
}

export function publish(model: ZoneModel, opts: PublishOptions, cache: PublishCache = new PublishCache()): Publication {
  const claims = new Map<string, Array<{ nsid: number; revision: string; claim: Claim }>>();
  const invalid = new Map<string, Problem>();
  for (const ns of model.namespaces.values()) {
    let part = cache.parts.get(ns.nsid);
    if (!part || part.instance !== ns.instance || part.version !== ns.version) {
      part = publishNamespace(ns, opts);
      cache.parts.set(ns.nsid, part);
    }
    for (const bad of part.invalid) {
      const key = `${bad.kind}\0${bad.name}`;
      const p = invalid.get(key) ?? { kind: bad.kind, name: bad.name, where: [], detail: bad.detail };
      p.where.push(bad.where);
      invalid.set(key, p);
    }
    const revision = `${ns.instance}.${ns.version}`;
    for (const [name, claim] of part.claims) {
      let list = claims.get(name);
      if (!list) claims.set(name, (list = []));
      list.push({ nsid: ns.nsid, revision, claim });
    }
  }
  for (const nsid of cache.parts.keys()) if (!model.namespaces.has(nsid)) cache.parts.delete(nsid);

  const problems: Problem[] = [...invalid.values()];
  const workloads: Workload[] = [];
  for (const [name, list] of claims) {
    if (list.length > 1) {
      const where = list.flatMap(({ nsid, claim }) => claim.links.map((l) => `${nsid}/${l.ifname}`));
      problems.push({ kind: 'collision', name, where, detail: `claimed in ${list.length} namespaces: no records for ${name} until one claim is left` });
      continue;
    }
    const [{ nsid, revision, claim }] = list as [{ nsid: number; revision: string; claim: Claim }];
    workloads.push({ name, nsid, revision, links: claim.links, addresses: claim.addresses, capped: claim.capped });
  }
  workloads.sort((a, b) => byString(a.name, b.name));
  for (const p of problems) p.where.sort(byString);
  problems.sort((a, b) => byString(a.kind, b.kind) || byString(a.name, b.name));
  return { workloads, problems };
}

/** A stable one-line identity of a problem, to log it once when it appears and once when it goes. */
export function problemKey(p: Problem): string {
  return `${p.kind} ${p.name} ${p.where.join(',')}`;
}
