/**
 * From the model to what is published: which workloads get names, with which addresses. A pure
 * function of the model (and the domain), so the same kernel state always publishes the same thing,
 * whatever order it was learnt in. The rules are documented in docs/ontap-zone.8 (ontap-zone(8)).
 *
 * Incremental: a namespace's part is rebuilt only when its version moved, and within it only the
 * workloads whose version moved; a workload's addresses are read off the front of its links'
 * sorted lists (rank.ts), so rebuilding one costs at most --max-addresses entries whatever it holds.
 */
import { DNS_LABEL, DNS_LABEL_RULE } from '../protocol/messages.js';
import type { NamespaceState, WorkloadState, ZoneModel } from './model.js';
import { select, type LinkRanks, type PublishedClass } from './rank.js';

export { DEFAULT_MAX_ADDRESSES, usable, type PublishedClass } from './rank.js';

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
  /** Changes whenever what the file says of this workload can change (render caches by it). */
  revision: string;
  /** The links carrying the name (one workload may hold several devices in its namespace). */
  links: Array<{ ifindex: number; ifname: string }>;
  /** Sorted: class, family, address bytes. Deprecated ones only where the rule keeps them. At most the model's maxAddresses. */
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

/** Where workload names come from (--names): device aliases, related UTS namespaces' host names, or both. */
export type NameSource = 'alias' | 'hostname' | 'both';

export interface PublishOptions {
  domain: string;
  /** Labels a workload may not take (the sub-zone labels, the name server's label). */
  reserved: ReadonlySet<string>;
  /** Default 'both'. */
  names?: NameSource;
}

/**
 * The label a host name stands for: the whole name if it is a DNS label, else its first label if
 * that is one (`web.example.com` -> `web`); undefined otherwise (withheld). Nothing is rewritten.
 */
export function hostnameLabel(raw: string): string | undefined {
  if (DNS_LABEL.test(raw)) return raw;
  const dot = raw.indexOf('.');
  if (dot > 0 && DNS_LABEL.test(raw.slice(0, dot))) return raw.slice(0, dot);
  return undefined;
}

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

function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Claim {
  links: Array<{ ifindex: number; ifname: string }>;
  addresses: PublishedAddress[];
  capped: boolean;
}

interface Invalid {
  kind: ProblemKind;
  name: string;
  where: string;
  detail: string;
}

/** One workload of one namespace: a claim on its name, or why the name is withheld. */
interface WorkloadPart {
  version: number;
  /** Built for a host name (every link): never reused for the alias of the same name. */
  hostname?: boolean;
  claim: Claim | undefined;
  invalid: Invalid[];
}

/** One namespace's part of the publication, rebuilt only where the namespace changed. */
interface NamespacePart {
  instance: number;
  version: number;
  workloads: Map<string, WorkloadPart>;
}

/**
 * Per-namespace results of publish(), reused while versions stay the same. Belongs to one model
 * and one PublishOptions.
 */
export class PublishCache {
  readonly parts = new Map<number, NamespacePart>();
}

function publishWorkload(ns: NamespaceState, alias: string, w: WorkloadState, max: number, opts: PublishOptions): WorkloadPart {
  return publishLinks(ns, alias, [...w.links], w.version, max, opts);
}

function publishLinks(ns: NamespaceState, name: string, ifindexes: Iterable<number>, version: number, max: number, opts: PublishOptions): WorkloadPart {
  const links = [...ifindexes].map((i) => ns.links.get(i)!).sort((a, b) => a.ifindex - b.ifindex);
  const bad = nameProblem(name, opts);
  if (bad) {
    return { version, claim: undefined, invalid: links.map((l) => ({ kind: bad.kind, name, where: `${ns.nsid}/${l.ifname}`, detail: bad.detail })) };
  }
  // A link that is not administratively up carries no traffic: its addresses are not published.
  const ranks: LinkRanks[] = [];
  for (const l of links) {
    const r = l.up ? ns.ranks.get(l.ifindex) : undefined;
    if (r) ranks.push(r);
  }
  const { selected, capped } = select(ranks, max);
  return {
    version,
    invalid: [],
    claim: {
      links: links.map(({ ifindex, ifname }) => ({ ifindex, ifname })),
      addresses: selected.map(({ entry, deprecated }) => ({ family: entry.family, address: entry.address, bytes: entry.bytes, cls: entry.cls, deprecated })),
      capped,
    },
  };
}

/** Not a name: the key of a namespace part's withheld host names. */
const HOSTNAME_PROBLEMS = '\0hostnames';

function publishNamespace(ns: NamespaceState, max: number, opts: PublishOptions, prev: NamespacePart | undefined): NamespacePart {
  const reuse = prev?.instance === ns.instance ? prev.workloads : undefined;
  const names = opts.names ?? 'both';
  const workloads = new Map<string, WorkloadPart>();
  // Host names first: each names the namespace's links; one that is also an alias here is one
  // name, over both's links.
  const fromHost = new Set<string>();
  const withheld: Invalid[] = [];
  if (names !== 'alias') {
    for (const raw of ns.hostnames) {
      const label = hostnameLabel(raw);
      const bad = label === undefined
        ? { kind: 'invalid-name' as const, detail: `a host name that is not a DNS label, nor is its first label (${DNS_LABEL_RULE})` }
        : nameProblem(label, opts);
      if (bad) withheld.push({ kind: bad.kind, name: raw, where: `${ns.nsid}/hostname`, detail: bad.detail });
      else fromHost.add(label!);
    }
  }
  // A host name names the links that have something to publish (not lo, not a bare device); with
  // none, it claims nothing, so an empty namespace cannot take a name from another.
  const addressed = [...ns.links.values()].filter((l) => l.up && ns.ranks.has(l.ifindex)).map((l) => l.ifindex);
  if (addressed.length > 0) {
    for (const label of fromHost) {
      const alias = names === 'hostname' ? undefined : ns.workloads.get(label);
      const links = alias ? new Set([...addressed, ...alias.links]) : addressed;
      workloads.set(label, { ...publishLinks(ns, label, links, ns.version, max, opts), hostname: true });
    }
  }
  if (withheld.length > 0) workloads.set(HOSTNAME_PROBLEMS, { version: ns.version, claim: undefined, invalid: withheld });
  if (names !== 'hostname') {
    for (const [alias, w] of ns.workloads) {
      if (workloads.has(alias)) continue; // one name with a host name of this namespace
      const old = reuse?.get(alias);
      workloads.set(alias, old !== undefined && old.hostname !== true && old.version === w.version ? old : publishWorkload(ns, alias, w, max, opts));
    }
  }
  return { instance: ns.instance, version: ns.version, workloads };
}

export function publish(model: ZoneModel, opts: PublishOptions, cache: PublishCache = new PublishCache()): Publication {
  const claims = new Map<string, Array<{ nsid: number; revision: string; claim: Claim }>>();
  const invalid = new Map<string, Problem>();
  for (const ns of model.namespaces.values()) {
    let part = cache.parts.get(ns.nsid);
    if (!part || part.instance !== ns.instance || part.version !== ns.version) {
      part = publishNamespace(ns, model.maxAddresses, opts, part);
      cache.parts.set(ns.nsid, part);
    }
    for (const [name, wp] of part.workloads) {
      for (const bad of wp.invalid) {
        const key = `${bad.kind}\0${bad.name}`;
        const p = invalid.get(key) ?? { kind: bad.kind, name: bad.name, where: [], detail: bad.detail };
        p.where.push(bad.where);
        invalid.set(key, p);
      }
      if (!wp.claim) continue;
      let list = claims.get(name);
      if (!list) claims.set(name, (list = []));
      list.push({ nsid: ns.nsid, revision: `${ns.instance}.${wp.version}`, claim: wp.claim });
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
