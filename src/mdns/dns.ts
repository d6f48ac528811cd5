/**
 * DNS message codec for the mDNS responder: RFC 1035 wire format with RFC 6762's two uses of the
 * class's top bit (unicast-response in questions, cache-flush in records). Pure: bytes in, objects
 * out, and back. `dns-packet` cannot carry the QU bit and has no typed errors (docs/design.md).
 *
 * Names are in presentation form without the trailing dot ('' is the root). A label byte that is
 * '.', '\' or outside 0x21-0x7e is written `\.`, `\\` or `\DDD`; encodeMessage accepts exactly that
 * form, so any decoded name encodes back to the same bytes (UTF-8 names come out as \DDD escapes).
 *
 * The decoder does work linear in the input whatever the header's counts say: every question or
 * record it creates has consumed bytes, a name costs at most 255 octets and 127 pointer jumps, and
 * counts that cannot fit the input are refused before anything is allocated.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const TYPE = { A: 1, NS: 2, CNAME: 5, PTR: 12, HINFO: 13, TXT: 16, AAAA: 28, SRV: 33, NSEC: 47, ANY: 255 } as const;
export const CLASS_IN = 1;
/** Header flag bits. */
export const FLAG_QR = 0x8000,
  FLAG_AA = 0x0400,
  FLAG_TC = 0x0200;

export interface Question {
  name: string;
  type: number;
  /** Without bit 15, which is `unicastResponse` (RFC 6762 §5.4, the QU bit). */
  class: number;
  unicastResponse: boolean;
}

/**
 * Record data. NS and CNAME records (names as rdata, like PTR) decode as kind 'ptr' too; the record's
 * `type` says which it is. Types whose rdata holds other names (SRV, MX, SOA, ...) decode as 'raw'
 * with those names decompressed (a pointer means nothing outside its own message), so raw bytes can
 * be written into any message as they are.
 */
export type RData =
  | { kind: 'a'; address: string } // dotted quad
  | { kind: 'aaaa'; address: string } // RFC 5952 text: lowercase, longest zero run as ::, hex groups throughout
  | { kind: 'ptr'; target: string } // PTR, CNAME, NS
  | { kind: 'nsec'; next: string; types: number[] } // types ascending, unique
  | { kind: 'raw'; bytes: Uint8Array };

export interface ResourceRecord {
  name: string;
  type: number;
  /** Without bit 15, which is `cacheFlush` (RFC 6762 §10.2). */
  class: number;
  cacheFlush: boolean;
  ttl: number;
  data: RData;
}

export interface Message {
  id: number;
  flags: number;
  questions: Question[];
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
}

export class DnsDecodeError extends Error {
  /** What was being decoded, e.g. `answers[2].rdata` or `header`. */
  readonly field: string;
  /** The rule the input broke. */
  readonly reason: string;
  /** Byte offset into the message where it broke. */
  readonly offset: number;
  constructor(field: string, reason: string, offset: number) {
    super(`${field}: ${reason} (at byte ${offset})`);
    this.name = 'DnsDecodeError';
    this.field = field;
    this.reason = reason;
    this.offset = offset;
  }
}

export class DnsEncodeError extends Error {
  /** The offending field, e.g. `answers[0].data.address`. */
  readonly field: string;
  readonly reason: string;
  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'DnsEncodeError';
    this.field = field;
    this.reason = reason;
  }
}

const HEADER_LENGTH = 12;
const TOP_BIT = 0x8000;
const MAX_NAME_OCTETS = 255; // RFC 1035 §3.1, on the wire, including the root's zero octet
const MAX_LABEL_OCTETS = 63;
const MAX_POINTER_JUMPS = 127;
const MAX_POINTER_TARGET = 0x3fff;
/** Smallest question: root name (1) + type + class; smallest record: root name + 10 + empty rdata. */
const MIN_QUESTION = 5;
const MIN_RECORD = 11;

/** Rdata made of fixed fields (a byte count) and names, for types RFC 3597 §4 / RFC 6762 §18.14 let be compressed. */
type Layout = readonly (number | 'name')[];
const NAME_LAYOUTS: ReadonlyMap<number, Layout> = new Map<number, Layout>([
  [3, ['name']], // MD
  [4, ['name']], // MF
  [6, ['name', 'name', 20]], // SOA
  [7, ['name']], // MB
  [8, ['name']], // MG
  [9, ['name']], // MR
  [14, ['name', 'name']], // MINFO
  [15, [2, 'name']], // MX
  [17, ['name', 'name']], // RP
  [18, [2, 'name']], // AFSDB
  [21, [2, 'name']], // RT
  [26, [2, 'name', 'name']], // PX
  [33, [6, 'name']], // SRV
  [36, [2, 'name']], // KX
  [39, ['name']], // DNAME
]);

const NAME_RDATA_TYPES: ReadonlySet<number> = new Set([TYPE.PTR, TYPE.CNAME, TYPE.NS]);

// ---------------------------------------------------------------------------------------------
// Decoding

interface NameRead {
  name: string;
  /** Offset just past the name where it was found (past its first pointer, if any). */
  end: number;
  /** The uncompressed wire form, when asked for. */
  wire?: Uint8Array;
}

function escapeLabel(buf: Uint8Array, start: number, length: number): string {
  let s = '';
  for (let i = start; i < start + length; i++) {
    const b = buf[i]!;
    if (b === 0x2e || b === 0x5c) s += '\\' + String.fromCharCode(b);
    else if (b < 0x21 || b > 0x7e) s += '\\' + String(b).padStart(3, '0');
    else s += String.fromCharCode(b);
  }
  return s;
}

/**
 * Reads a name at `start`. Its inline part must end by `limit` (the message, or the rdata holding
 * it); what a pointer leads to may be anywhere before. A pointer must point strictly before the
 * start of the label run it ends, so every jump goes backwards and the chain ends; at most 127 jumps.
 */
function readName(buf: Uint8Array, start: number, limit: number, field: () => string, wantWire: boolean, within: 'message' | 'rdata' = 'message'): NameRead {
  let pos = start;
  let runStart = start;
  let runLimit = limit;
  let runWithin = within;
  let end = -1;
  let jumps = 0;
  let octets = 1; // the root's zero octet
  let name = '';
  const labelStarts: number[] | undefined = wantWire ? [] : undefined;
  for (;;) {
    if (pos >= runLimit) {
      throw new DnsDecodeError(field(), `truncated name: runs past the end of the ${runWithin}`, pos);
    }
    const len = buf[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const labelType = len & 0xc0;
    if (labelType === 0xc0) {
      if (pos + 1 >= runLimit) throw new DnsDecodeError(field(), 'truncated name: compression pointer cut off', pos);
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (target >= runStart) {
        throw new DnsDecodeError(field(), `compression pointer to byte ${target} must point strictly before byte ${runStart}, where these labels begin`, pos);
      }
      if (target < HEADER_LENGTH) throw new DnsDecodeError(field(), `compression pointer to byte ${target} points into the header`, pos);
      if (++jumps > MAX_POINTER_JUMPS) throw new DnsDecodeError(field(), `more than ${MAX_POINTER_JUMPS} compression pointers in one name`, pos);
      if (end < 0) end = pos + 2;
      pos = runStart = target;
      runLimit = buf.length;
      runWithin = 'message';
      continue;
    }
    if (labelType !== 0) {
      throw new DnsDecodeError(field(), `label length byte 0x${len.toString(16)}: label type 0x${labelType.toString(16)} is not supported (labels are 1-63 octets)`, pos);
    }
    if (pos + 1 + len > runLimit) throw new DnsDecodeError(field(), `truncated name: a ${len}-octet label runs past the end of the ${runWithin}`, pos);
    octets += 1 + len;
    if (octets > MAX_NAME_OCTETS) throw new DnsDecodeError(field(), `name longer than ${MAX_NAME_OCTETS} octets`, pos);
    const label = escapeLabel(buf, pos + 1, len); // never '': labels here are 1-63 octets
    name = name === '' ? label : `${name}.${label}`;
    labelStarts?.push(pos);
    pos += 1 + len;
  }
  if (!labelStarts) return { name, end };
  const wire = new Uint8Array(octets);
  let w = 0;
  for (const at of labelStarts) {
    const n = buf[at]! + 1;
    wire.set(buf.subarray(at, at + n), w);
    w += n;
  }
  return { name, end, wire };
}

function u16(buf: Uint8Array, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

function u32(buf: Uint8Array, at: number): number {
  return buf[at]! * 0x1000000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!);
}

function formatIPv6(b: Uint8Array, at: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(u16(b, at + 2 * i));
  // RFC 5952 §4.2: the longest run of two or more zero groups becomes '::', the first on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]): string => g.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

function decodeNsecTypes(buf: Uint8Array, start: number, end: number, field: () => string): number[] {
  const types: number[] = [];
  let lastWindow = -1;
  let p = start;
  while (p < end) {
    if (p + 2 > end) throw new DnsDecodeError(field(), 'truncated NSEC type bitmap: window header cut off', p);
    const window = buf[p]!;
    const length = buf[p + 1]!;
    if (window <= lastWindow) throw new DnsDecodeError(field(), `NSEC bitmap window ${window} after window ${lastWindow}: windows must ascend`, p);
    if (length < 1 || length > 32) throw new DnsDecodeError(field(), `NSEC bitmap length ${length} outside 1-32`, p + 1);
    if (p + 2 + length > end) throw new DnsDecodeError(field(), `truncated NSEC type bitmap: ${length} octets, ${end - p - 2} left in the rdata`, p + 1);
    for (let i = 0; i < length; i++) {
      const byte = buf[p + 2 + i]!;
      if (byte === 0) continue;
      for (let bit = 0; bit < 8; bit++) if (byte & (0x80 >> bit)) types.push(window * 256 + i * 8 + bit);
    }
    lastWindow = window;
    p += 2 + length;
  }
  return types;
}

function decodeRdata(buf: Uint8Array, type: number, start: number, length: number, field: () => string): RData {
  const end = start + length;
  if (type === TYPE.A) {
    if (length !== 4) throw new DnsDecodeError(field(), `A rdata must be 4 octets, rdlength is ${length}`, start);
    return { kind: 'a', address: `${buf[start]}.${buf[start + 1]}.${buf[start + 2]}.${buf[start + 3]}` };
  }
  if (type === TYPE.AAAA) {
    if (length !== 16) throw new DnsDecodeError(field(), `AAAA rdata must be 16 octets, rdlength is ${length}`, start);
    return { kind: 'aaaa', address: formatIPv6(buf, start) };
  }
  if (NAME_RDATA_TYPES.has(type)) {
    const r = readName(buf, start, end, field, false, 'rdata');
    if (r.end !== end) throw new DnsDecodeError(field(), `${end - r.end} octets after the name, inside rdlength`, r.end);
    return { kind: 'ptr', target: r.name };
  }
  if (type === TYPE.NSEC) {
    const r = readName(buf, start, end, field, false, 'rdata');
    return { kind: 'nsec', next: r.name, types: decodeNsecTypes(buf, r.end, end, field) };
  }
  const layout = NAME_LAYOUTS.get(type);
  if (!layout) return { kind: 'raw', bytes: new Uint8Array(buf.subarray(start, end)) };
  // Names decompressed, fixed fields copied: the rdata as it would be sent uncompressed.
  const parts: Uint8Array[] = [];
  let p = start;
  for (const item of layout) {
    if (item === 'name') {
      const r = readName(buf, p, end, field, true, 'rdata');
      parts.push(r.wire!);
      p = r.end;
    } else {
      if (p + item > end) throw new DnsDecodeError(field(), `truncated rdata: a ${item}-octet field runs past rdlength`, p);
      parts.push(buf.subarray(p, p + item));
      p += item;
    }
  }
  if (p !== end) throw new DnsDecodeError(field(), `${end - p} octets after the last field, inside rdlength`, p);
  const bytes = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
  let w = 0;
  for (const x of parts) {
    bytes.set(x, w);
    w += x.length;
  }
  return { kind: 'raw', bytes };
}

/**
 * Decodes one DNS message. Throws DnsDecodeError (naming the field and the rule) on anything
 * malformed. Bytes after the last record the header counts are ignored: the header says where the
 * message ends, and RFC 1035 gives trailing octets no meaning.
 */
export function decodeMessage(buf: Uint8Array): Message {
  if (buf.length < HEADER_LENGTH) throw new DnsDecodeError('header', `truncated header: ${buf.length} of ${HEADER_LENGTH} octets`, 0);
  const qd = u16(buf, 4);
  const an = u16(buf, 6);
  const ns = u16(buf, 8);
  const ar = u16(buf, 10);
  const least = HEADER_LENGTH + qd * MIN_QUESTION + (an + ns + ar) * MIN_RECORD;
  if (least > buf.length) {
    throw new DnsDecodeError('header', `counts (${qd} questions, ${an}+${ns}+${ar} records) need at least ${least} octets, the message has ${buf.length}`, 4);
  }
  const m: Message = { id: u16(buf, 0), flags: u16(buf, 2), questions: [], answers: [], authorities: [], additionals: [] };
  let pos = HEADER_LENGTH;
  for (let i = 0; i < qd; i++) {
    const field = (): string => `questions[${i}]`;
    const r = readName(buf, pos, buf.length, () => `${field()}.name`, false);
    pos = r.end;
    if (pos + 4 > buf.length) throw new DnsDecodeError(field(), `truncated question: type and class need 4 octets, ${buf.length - pos} left`, pos);
    const klass = u16(buf, pos + 2);
    m.questions.push({ name: r.name, type: u16(buf, pos), class: klass & ~TOP_BIT, unicastResponse: (klass & TOP_BIT) !== 0 });
    pos += 4;
  }
  const sections: Array<[ResourceRecord[], number, string]> = [
    [m.answers, an, 'answers'],
    [m.authorities, ns, 'authorities'],
    [m.additionals, ar, 'additionals'],
  ];
  for (const [into, count, section] of sections) {
    for (let i = 0; i < count; i++) {
      const field = (): string => `${section}[${i}]`;
      const r = readName(buf, pos, buf.length, () => `${field()}.name`, false);
      pos = r.end;
      if (pos + 10 > buf.length) throw new DnsDecodeError(field(), `truncated record: type, class, ttl and rdlength need 10 octets, ${buf.length - pos} left`, pos);
      const type = u16(buf, pos);
      const klass = u16(buf, pos + 2);
      const ttl = u32(buf, pos + 4);
      const rdlength = u16(buf, pos + 8);
      pos += 10;
      if (pos + rdlength > buf.length) {
        throw new DnsDecodeError(`${field()}.rdlength`, `rdlength ${rdlength} overruns the message by ${pos + rdlength - buf.length} octets`, pos - 2);
      }
      const data = decodeRdata(buf, type, pos, rdlength, () => `${field()}.rdata`);
      into.push({ name: r.name, type, class: klass & ~TOP_BIT, cacheFlush: (klass & TOP_BIT) !== 0, ttl, data });
      pos += rdlength;
    }
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Encoding

class Writer {
  private buf = Buffer.alloc(512);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v;
  }
  u16(v: number): void {
    this.room(2);
    this.buf.writeUInt16BE(v, this.length);
    this.length += 2;
  }
  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32BE(v, this.length);
    this.length += 4;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  patch16(at: number, v: number): void {
    this.buf.writeUInt16BE(v, at);
  }
  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Presentation form -> labels, refusing anything decodeMessage would not have produced. */
function parseName(name: unknown, field: string): Uint8Array[] {
  if (typeof name !== 'string') throw new DnsEncodeError(field, `must be a string, is ${typeof name}`);
  if (name === '') return [];
  const labels: Uint8Array[] = [];
  let octets = 1;
  let cur: number[] = [];
  const finish = (i: number): void => {
    if (cur.length === 0) throw new DnsEncodeError(field, `empty label at index ${i} of ${JSON.stringify(name)} (no leading, trailing or double dots; the root is '')`);
    if (cur.length > MAX_LABEL_OCTETS) throw new DnsEncodeError(field, `label of ${cur.length} octets (at most ${MAX_LABEL_OCTETS})`);
    octets += 1 + cur.length;
    if (octets > MAX_NAME_OCTETS) throw new DnsEncodeError(field, `name longer than ${MAX_NAME_OCTETS} octets on the wire`);
    labels.push(Uint8Array.from(cur));
    cur = [];
  };
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2e) {
      finish(i);
    } else if (c === 0x5c) {
      const n = name.charCodeAt(i + 1);
      if (n === 0x2e || n === 0x5c) {
        cur.push(n);
        i += 1;
      } else if (isDigit(n) && isDigit(name.charCodeAt(i + 2)) && isDigit(name.charCodeAt(i + 3))) {
        const v = Number(name.slice(i + 1, i + 4));
        if (v > 255) throw new DnsEncodeError(field, `escape \\${name.slice(i + 1, i + 4)} at index ${i} is above 255`);
        cur.push(v);
        i += 3;
      } else {
        throw new DnsEncodeError(field, `'\\' at index ${i} must be followed by '.', '\\' or three decimal digits`);
      }
    } else if (c < 0x21 || c > 0x7e) {
      throw new DnsEncodeError(field, `character U+${c.toString(16).padStart(4, '0')} at index ${i} must be written as \\DDD escapes of its octets`);
    } else {
      cur.push(c);
    }
  }
  finish(name.length);
  return labels;
}

/** Suffix keys for the compression table: exact octets (case kept), length-prefixed. */
function suffixKeys(labels: Uint8Array[]): string[] {
  const keys: string[] = new Array<string>(labels.length);
  let suffix = '';
  for (let i = labels.length - 1; i >= 0; i--) {
    const l = labels[i]!;
    suffix = String.fromCharCode(l.length, ...l) + suffix;
    keys[i] = suffix;
  }
  return keys;
}

/** Writes a name; `table` maps suffixes already in the message to their offsets (null: no table at all). */
function writeName(w: Writer, table: Map<string, number> | null, labels: Uint8Array[], compress: boolean): void {
  const keys = table ? suffixKeys(labels) : [];
  for (let i = 0; i < labels.length; i++) {
    if (table) {
      const key = keys[i]!;
      const at = table.get(key);
      if (compress && at !== undefined) {
        w.u16(0xc000 | at);
        return;
      }
      if (at === undefined && w.length <= MAX_POINTER_TARGET) table.set(key, w.length);
    }
    const l = labels[i]!;
    w.u8(l.length);
    w.bytes(l);
  }
  w.u8(0);
}

function checkInt(v: unknown, max: number, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new DnsEncodeError(field, `must be an integer 0-${max}, is ${String(v)}`);
  return v;
}

function parseIPv4(s: unknown, field: string): Uint8Array {
  if (typeof s !== 'string' || !isIPv4(s)) throw new DnsEncodeError(field, `must be a dotted quad, is ${JSON.stringify(s)}`);
  return Uint8Array.from(s.split('.').map(Number));
}

function parseIPv6(s: unknown, field: string): Uint8Array {
  if (typeof s !== 'string' || !isIPv6(s) || s.includes('%')) throw new DnsEncodeError(field, `must be an IPv6 address without a zone, is ${JSON.stringify(s)}`);
  const groups = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((g) => {
          if (!g.includes('.')) return [parseInt(g, 16)];
          const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });
  const gap = s.indexOf('::');
  let all: number[];
  if (gap < 0) {
    all = groups(s);
  } else {
    const head = groups(s.slice(0, gap));
    const tail = groups(s.slice(gap + 2));
    all = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function writeNsecTypes(w: Writer, types: unknown, field: string): void {
  if (!Array.isArray(types)) throw new DnsEncodeError(field, 'must be an array of types');
  let last = -1;
  let window = -1;
  let bitmap = new Uint8Array(32);
  let used = 0;
  const flush = (): void => {
    if (window < 0) return;
    w.u8(window);
    w.u8(used);
    w.bytes(bitmap.subarray(0, used));
  };
  types.forEach((t: unknown, i) => {
    const type = checkInt(t, 0xffff, `${field}[${i}]`);
    if (type <= last) throw new DnsEncodeError(`${field}[${i}]`, `types must be ascending and unique: ${type} after ${last}`);
    last = type;
    if (type >> 8 !== window) {
      flush();
      window = type >> 8;
      bitmap = new Uint8Array(32);
    }
    const low = type & 0xff;
    bitmap[low >> 3]! |= 0x80 >> (low & 7);
    used = (low >> 3) + 1;
  });
  flush();
}

function writeRdata(w: Writer, table: Map<string, number> | null, type: number, data: RData, field: string): void {
  const mismatch = (wanted: string): DnsEncodeError => new DnsEncodeError(`${field}.kind`, `kind '${data.kind}' is for ${wanted}, the record's type is ${type}`);
  switch (data?.kind) {
    case 'a':
      if (type !== TYPE.A) throw mismatch('type A (1)');
      w.bytes(parseIPv4(data.address, `${field}.address`));
      return;
    case 'aaaa':
      if (type !== TYPE.AAAA) throw mismatch('type AAAA (28)');
      w.bytes(parseIPv6(data.address, `${field}.address`));
      return;
    case 'ptr':
      if (!NAME_RDATA_TYPES.has(type)) throw mismatch('types PTR (12), CNAME (5) and NS (2)');
      writeName(w, table, parseName(data.target, `${field}.target`), true);
      return;
    case 'nsec':
      if (type !== TYPE.NSEC) throw mismatch('type NSEC (47)');
      // RFC 6762 §18.14 allows a compressed next name, RFC 4034 §4.1.1 does not: write it whole.
      writeName(w, table, parseName(data.next, `${field}.next`), false);
      writeNsecTypes(w, data.types, `${field}.types`);
      return;
    case 'raw':
      if (!(data.bytes instanceof Uint8Array)) throw new DnsEncodeError(`${field}.bytes`, 'must be a Uint8Array');
      w.bytes(data.bytes);
      return;
    default:
      throw new DnsEncodeError(`${field}.kind`, `unknown rdata kind ${JSON.stringify((data as { kind?: unknown })?.kind)}`);
  }
}

function writeRecord(w: Writer, table: Map<string, number>, r: ResourceRecord, field: string): void {
  writeName(w, table, parseName(r.name, `${field}.name`), true);
  const type = checkInt(r.type, 0xffff, `${field}.type`);
  w.u16(type);
  w.u16(checkInt(r.class, 0x7fff, `${field}.class`) | (r.cacheFlush ? TOP_BIT : 0));
  w.u32(checkInt(r.ttl, 0xffffffff, `${field}.ttl`));
  const lengthAt = w.length;
  w.u16(0);
  writeRdata(w, table, type, r.data, `${field}.data`);
  const rdlength = w.length - lengthAt - 2;
  if (rdlength > 0xffff) throw new DnsEncodeError(`${field}.data`, `rdata of ${rdlength} octets (at most 65535)`);
  w.patch16(lengthAt, rdlength);
}

/**
 * Encodes a message, compressing names (RFC 1035 §4.1.4: owner names, question names and the names
 * of PTR/CNAME/NS rdata point to earlier occurrences of their suffixes, matched octet for octet).
 * Throws DnsEncodeError naming the field. It sets no size limit: fitting the interface is the caller's.
 */
export function encodeMessage(m: Message): Buffer {
  const w = new Writer();
  const table = new Map<string, number>();
  w.u16(checkInt(m.id, 0xffff, 'id'));
  w.u16(checkInt(m.flags, 0xffff, 'flags'));
  const sections: Array<[string, unknown[]]> = [
    ['questions', m.questions],
    ['answers', m.answers],
    ['authorities', m.authorities],
    ['additionals', m.additionals],
  ];
  for (const [name, list] of sections) {
    if (!Array.isArray(list)) throw new DnsEncodeError(name, 'must be an array');
    if (list.length > 0xffff) throw new DnsEncodeError(name, `${list.length} entries (the header counts at most 65535)`);
    w.u16(list.length);
  }
  m.questions.forEach((q, i) => {
    const field = `questions[${i}]`;
    writeName(w, table, parseName(q.name, `${field}.name`), true);
    w.u16(checkInt(q.type, 0xffff, `${field}.type`));
    w.u16(checkInt(q.class, 0x7fff, `${field}.class`) | (q.unicastResponse ? TOP_BIT : 0));
  });
  for (const [name, list] of [['answers', m.answers], ['authorities', m.authorities], ['additionals', m.additionals]] as const) {
    list.forEach((r, i) => writeRecord(w, table, r, `${name}[${i}]`));
  }
  return w.result();
}

/**
 * The record's rdata as sent uncompressed, octets as they are (no case folding): what RFC 6762
 * §8.2 compares, after class and type, to break a simultaneous-probe tie.
 */
export function rdataBytes(r: ResourceRecord): Uint8Array {
  const w = new Writer();
  writeRdata(w, null, checkInt(r.type, 0xffff, 'type'), r.data, 'data');
  return new Uint8Array(w.result());
}

function foldAscii(s: string): string {
  return s.replace(/[A-Z]+/g, (x) => x.toLowerCase());
}

/**
 * Whether two names are the same, comparing octets with A-Z folded to a-z and nothing else
 * (RFC 4343, RFC 6762 §16). Different escapes of one octet (`\065` and `A`) compare equal.
 */
export function sameName(a: string, b: string): boolean {
  if (foldAscii(a) === foldAscii(b)) return true;
  let la: Uint8Array[], lb: Uint8Array[];
  try {
    la = parseName(a, 'a');
    lb = parseName(b, 'b');
  } catch {
    return false;
  }
  if (la.length !== lb.length) return false;
  const fold = (c: number): number => (c >= 0x41 && c <= 0x5a ? c + 0x20 : c);
  for (let i = 0; i < la.length; i++) {
    const x = la[i]!;
    const y = lb[i]!;
    if (x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (fold(x[j]!) !== fold(y[j]!)) return false;
  }
  return true;
}
