/**
 * The publication as tinydns-data lines, for Debian's stock djbdns 1.05 (no IPv6 patch): A records
 * are `+` lines, AAAA records generic `:fqdn:28:rdata` lines with the 16 bytes octal-escaped.
 * A pure function: the same publication and configuration give the same bytes.
 */
import type { Prefix } from './classify.js';
import type { Problem, Publication, PublishedAddress, Workload } from './publish.js';

export interface ZoneConfig {
  /** Lower case, no trailing dot. */
  domain: string;
  /** TTL of every published record, and the SOA minimum (how long a resolver caches "no such name"). */
  ttl: number;
  /** --lan: IPv4 prefixes whose clients get the lan answers for NAME.DOMAIN. */
  lan: Prefix[];
  /** SOA MNAME and NS target. */
  nameServer: string;
  /** SOA RNAME, as a name (hostmaster.DOMAIN). */
  hostmaster: string;
}

/** tinydns location codes (one or two letters). */
export const LAN_LOCATION = 'ln';
export const WAN_LOCATION = 'wn';
/** The zone link-local names go in. */
export const LOCAL_ZONE = 'local';
/** SOA timers (refresh, retry, expire) as tinydns-data's `.` lines have them; minimum is the TTL. */
const SOA_TIMERS = '16384:2048:1048576';
const NS_TTL = 3600;

/** "\040\001\015\270...": tinydns-data's escape for arbitrary bytes in a generic record. */
export function octal(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += '\\' + b.toString(8).padStart(3, '0');
  return out;
}

/**
 * tinydns-data locations match whole leading octets ("%ln:10.77" is 10.77.0.0/16), so a CIDR prefix
 * becomes every octet-aligned prefix it covers: 172.16.0.0/12 is 172.16 .. 172.31 (at most 128 lines).
 */
export function locationPrefixes(p: Prefix): string[] {
  if (p.family !== 4) throw new RangeError('tinydns locations are IPv4 prefixes');
  const octets = Math.ceil(p.length / 8);
  const count = 2 ** (octets * 8 - p.length);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = [...p.bytes.subarray(0, octets)];
    if (octets > 0) bytes[octets - 1] = bytes[octets - 1]! + i;
    out.push(bytes.join('.'));
  }
  return out;
}

function compareDotted(a: string, b: string): number {
  const x = a === '' ? [] : a.split('.').map(Number);
  const y = b === '' ? [] : b.split('.').map(Number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

/** A comment-safe rendering of untrusted text (aliases may hold newlines or colons). */
function quote(s: string): string {
  return JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * An interface name as it is when it is plain printable ASCII, else quoted: the kernel takes any
 * byte but "/", ":" and white space in a name, escape sequences and C1 controls included, and a
 * workload names its own links.
 */
function ifnameText(s: string): string {
  return /^[\x21-\x7e]+$/.test(s) && !/["\\]/.test(s) ? s : quote(s);
}

function record(fqdn: string, a: PublishedAddress, ttl: number, location?: string): string {
  const lo = location === undefined ? '' : `::${location}`;
  return a.family === 4 ? `+${fqdn}:${a.address}:${ttl}${lo}` : `:${fqdn}:28:${octal(a.bytes)}:${ttl}${lo}`;
}

function workloadLines(w: Workload, cfg: ZoneConfig): string[] {
  const { domain, ttl } = cfg;
  const of = (cls: PublishedAddress['cls']) => w.addresses.filter((a) => a.cls === cls);
  const wan = of('wan');
  const lan = of('lan');
  const local = of('local');
  const capped = w.capped ? ` (capped: the first ${w.addresses.length} of its addresses, --max-addresses)` : '';
  const lines = [`# ${w.name}: nsid ${w.nsid}, ${w.links.map((l) => ifnameText(l.ifname)).join(' ')}${capped}`];
  for (const a of wan) lines.push(record(`${w.name}.wan.${domain}`, a, ttl));
  for (const a of lan) lines.push(record(`${w.name}.lan.${domain}`, a, ttl));
  const bare = `${w.name}.${domain}`;
  if (cfg.lan.length === 0) {
    for (const a of wan) lines.push(record(bare, a, ttl));
  } else {
    // Clients inside --lan: the lan addresses of each family, else (none of that family) the wan ones.
    for (const family of [4, 6] as const) {
      const own = lan.filter((a) => a.family === family);
      for (const a of own.length > 0 ? own : wan.filter((x) => x.family === family)) lines.push(record(bare, a, ttl, LAN_LOCATION));
    }
    for (const a of wan) lines.push(record(bare, a, ttl, WAN_LOCATION));
  }
  for (const a of local) lines.push(record(`${w.name}.${LOCAL_ZONE}`, a, ttl));
  return lines;
}

function problemLine(p: Problem): string {
  return `# withheld ${quote(p.name)} (${p.kind}: ${p.detail}) at ${p.where.map(quote).join(' ')}`;
}

/**
 * Rendered lines per workload, reused while its revision stays the same. Belongs to one ZoneConfig.
 */
export class RenderCache {
  chunks = new Map<string, string>();
}

export function render(pub: Publication, cfg: ZoneConfig, cache?: RenderCache): string {
  const { domain, ttl, nameServer, hostmaster } = cfg;
  const lines = [
    `# ontap-zone: names of the workloads under ${domain} and ${LOCAL_ZONE}. Generated: every change rewrites this file.`,
    `Z${domain}:${nameServer}:${hostmaster}::${SOA_TIMERS}:${ttl}:${ttl}`,
    `&${domain}::${nameServer}:${NS_TTL}`,
    `Z${LOCAL_ZONE}:${nameServer}:${hostmaster}::${SOA_TIMERS}:${ttl}:${ttl}`,
    `&${LOCAL_ZONE}::${nameServer}:${NS_TTL}`,
  ];
  if (cfg.lan.length > 0) {
    const prefixes = [...new Set(cfg.lan.flatMap(locationPrefixes))].sort(compareDotted);
    for (const p of prefixes) lines.push(p === '' ? `%${LAN_LOCATION}` : `%${LAN_LOCATION}:${p}`);
    // Everyone else; unless a lan prefix already is everyone (0.0.0.0/0).
    if (!prefixes.includes('')) lines.push(`%${WAN_LOCATION}`);
  }
  for (const p of pub.problems) lines.push(problemLine(p));
  const next = new Map<string, string>();
  for (const w of pub.workloads) {
    if (w.addresses.length === 0) continue;
    const key = `${w.name}\0${w.revision}`;
    const chunk = cache?.chunks.get(key) ?? workloadLines(w, cfg).join('\n');
    next.set(key, chunk);
    lines.push(chunk);
  }
  if (cache) cache.chunks = next;
  return lines.join('\n') + '\n';
}
