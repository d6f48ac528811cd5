/**
 * The records one workload's name stands for on one link (RFC 6762): `NAME.local` A and AAAA, a
 * PTR for each address's reverse name, and NSEC records that say which types exist (§6.1), so a
 * question for a type the name does not have is answered at once instead of timing out. All are
 * unique records (we probe for the name), so all carry the cache-flush bit (§10.2), and a TTL of
 * 120 s, the RFC's for records that carry a host name (§10).
 *
 * Pure: the same name and addresses give the same records, in the same order.
 */
import { CLASS_IN, TYPE, type ResourceRecord } from './dns.js';

export const HOST_TTL = 120;

export interface LinkAddress {
  family: 4 | 6;
  /** Text form, as the model has it (dotted quad, RFC 5952). */
  address: string;
  bytes: Uint8Array;
}

/** `NAME.local` of a label. */
export function localName(label: string): string {
  return `${label}.local`;
}

/** The reverse-mapping name of an address: `d.c.b.a.in-addr.arpa` or 32 nibbles `.ip6.arpa`. */
export function reverseName(family: 4 | 6, bytes: Uint8Array): string {
  if (family === 4) return `${[...bytes].reverse().join('.')}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (let i = bytes.length - 1; i >= 0; i--) {
    const b = bytes[i]!;
    nibbles.push((b & 0xf).toString(16), (b >> 4).toString(16));
  }
  return `${nibbles.join('.')}.ip6.arpa`;
}

/** The record set of `name` (a full name, e.g. web.local) with these addresses. */
export interface RecordSet {
  name: string;
  /** Every record we own, in a fixed order: A, AAAA (by address bytes), the name's NSEC, then per address its PTR and NSEC. */
  all: ResourceRecord[];
  /** The name's A and AAAA records. */
  addresses: ResourceRecord[];
  /** Lowercase owner name -> the records of that name. */
  byName: Map<string, ResourceRecord[]>;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export function recordSet(name: string, addresses: readonly LinkAddress[], ttl = HOST_TTL): RecordSet {
  const sorted = [...addresses].sort((x, y) => x.family - y.family || compareBytes(x.bytes, y.bytes));
  const own = (type: number, data: ResourceRecord['data'], owner = name): ResourceRecord =>
    ({ name: owner, type, class: CLASS_IN, cacheFlush: true, ttl, data });
  const addressRecords = sorted.map((a) =>
    a.family === 4 ? own(TYPE.A, { kind: 'a', address: a.address }) : own(TYPE.AAAA, { kind: 'aaaa', address: a.address }));
  const types = [...new Set(addressRecords.map((r) => r.type))].sort((x, y) => x - y);
  const all: ResourceRecord[] = [...addressRecords, own(TYPE.NSEC, { kind: 'nsec', next: name, types })];
  for (const a of sorted) {
    const rev = reverseName(a.family, a.bytes);
    all.push(own(TYPE.PTR, { kind: 'ptr', target: name }, rev));
    all.push(own(TYPE.NSEC, { kind: 'nsec', next: rev, types: [TYPE.PTR] }, rev));
  }
  const byName = new Map<string, ResourceRecord[]>();
  for (const r of all) {
    const key = r.name.toLowerCase();
    const list = byName.get(key);
    if (list) list.push(r);
    else byName.set(key, [r]);
  }
  return { name, all, addresses: addressRecords, byName };
}
