/**
 * DHCPv4 message codec for ontapd's DHCP client (RFC 2131, options RFC 2132, long options RFC 3396,
 * rapid commit RFC 4039). Pure: bytes in, objects out, and back. Every packet the client reads
 * comes off the LAN and may be forged, so the decoder refuses (DhcpDecodeError naming the field and
 * the rule) rather than guesses, never reads past the input, and allocates at most in proportion to
 * the input's length whatever its length octets claim: every option it keeps has consumed its bytes.
 *
 * What it refuses and why is in docs/design.md "DHCP messages". Two choices shape what comes out:
 *
 * - A missing END option is tolerated when the field simply ends at an option boundary: RFC 2131
 *   §4.1 wants END, but servers that fill the packet to the byte and omit it exist, and nothing is
 *   lost (every option was whole). A length octet cut off, or an option running past the field, is
 *   truncation and refused.
 * - Text is checked by what it is used for. Host name (12) and domain name (15) become the
 *   workload's configuration (its host name, a resolv.conf search line): they must be DNS names
 *   (letters, digits, '-', '_', dots between non-empty labels), so no space, newline or other byte
 *   can reach a file or a log through them; anything else is refused. Message (56) is only ever
 *   logged, and a NAK's reason is worth seeing even when odd: it is escaped (\xHH, and \\), not
 *   refused. Trailing NULs are dropped from all three (some servers NUL-terminate, RFC 2132 §2
 *   notwithstanding).
 */

export const MessageType = { DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8 } as const;
export type MessageTypeNumber = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;
/** What a client sends (RFC 2131 Table 5). */
export type ClientMessageType = 1 | 3 | 4 | 7 | 8;

export const Option = {
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN: 15,
  BROADCAST: 28,
  REQUESTED_ADDRESS: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST: 55,
  MESSAGE: 56,
  MAX_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  CLIENT_ID: 61,
  RAPID_COMMIT: 80,
  END: 255,
  PAD: 0,
} as const;

/** Lease time 0xffffffff: infinite (RFC 2131 §3.3). */
export const INFINITE_LEASE = 0xffffffff;
export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
/** The UDP payload every DHCP host must accept (576-octet IP datagram, RFC 2131 §2). */
export const MIN_MAX_MESSAGE = 576 - 28;

export interface DhcpMessage {
  op: 1 | 2; // BOOTREQUEST / BOOTREPLY
  htype: number;
  xid: number; // uint32
  secs: number;
  broadcast: boolean; // flags bit 15
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string; // dotted quads
  chaddr: Buffer; // hlen bytes (6 for Ethernet)
  type: MessageTypeNumber; // option 53, required
  /** Every option but PAD and END, RFC 3396 instances concatenated (options field, then file, then sname when overloaded). */
  options: ReadonlyMap<number, Buffer>;
  clientId?: Buffer;
  serverId?: string;
  requestedAddress?: string;
  /** Seconds; INFINITE_LEASE (0xffffffff) is infinite. */
  leaseSeconds?: number;
  renewalSeconds?: number;
  rebindingSeconds?: number;
  subnetMask?: string;
  routers?: string[];
  dns?: string[];
  domain?: string;
  hostname?: string;
  /** Escaped: printable ASCII as is, '\' as '\\', any other octet as \xHH. */
  message?: string;
  rapidCommit?: boolean;
  parameterRequest?: number[];
  maxMessageSize?: number;
}

export interface ClientMessage {
  type: ClientMessageType;
  xid: number;
  secs?: number;
  broadcast: boolean;
  ciaddr?: string;
  chaddr: Buffer;
  clientId: Buffer;
  hostname?: string;
  requestedAddress?: string;
  serverId?: string;
  parameterRequest?: number[];
  maxMessageSize?: number;
  rapidCommit?: boolean;
  message?: string;
}

/**
 * Made for every malformed packet anyone on the LAN sends, so it carries no stack (capturing one
 * costs about 10 us: ontapd's RequestError does the same for the same reason).
 */
export class DhcpDecodeError extends Error {
  override readonly name = 'DhcpDecodeError';
  /** What was being decoded: a header field (`op`, `hlen`, `cookie`, ...) or `option N`. */
  readonly field: string;
  /** The rule the input broke. */
  readonly rule: string;
  /** Byte offset into the message where it broke, when there is one. */
  readonly offset: number | undefined;
  constructor(field: string, rule: string, offset?: number) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(offset === undefined ? `${field}: ${rule}` : `${field}: ${rule} (at byte ${offset})`);
    Error.stackTraceLimit = limit;
    this.field = field;
    this.rule = rule;
    this.offset = offset;
  }
}

export class DhcpEncodeError extends Error {
  override readonly name = 'DhcpEncodeError';
  /** The offending ClientMessage field, e.g. `serverId`. */
  readonly field: string;
  readonly rule: string;
  constructor(field: string, rule: string) {
    super(`${field}: ${rule}`);
    this.field = field;
    this.rule = rule;
  }
}

const COOKIE = 0x63825363; // RFC 2131 §3
const COOKIE_AT = 236;
const OPTIONS_AT = 240;
const SNAME_AT = 44;
const SNAME_END = 108;
const FILE_AT = 108;
const FILE_END = 236;
const MAX_HLEN = 16; // chaddr is 16 octets
/** BOOTP's minimum (RFC 951: 236 octets and a 64-octet vend field): some servers and relays drop anything shorter. */
const MIN_ENCODED = 300;

const OPTION_NAMES: ReadonlyMap<number, string> = new Map([
  [1, 'subnet mask'],
  [3, 'router'],
  [6, 'DNS servers'],
  [12, 'host name'],
  [15, 'domain name'],
  [28, 'broadcast address'],
  [50, 'requested address'],
  [51, 'lease time'],
  [52, 'option overload'],
  [53, 'message type'],
  [54, 'server identifier'],
  [55, 'parameter request list'],
  [56, 'message'],
  [57, 'maximum message size'],
  [58, 'renewal time'],
  [59, 'rebinding time'],
  [61, 'client identifier'],
  [80, 'rapid commit'],
]);

/** `option 51 (lease time)`: the field name errors carry for an option. */
export function optionField(code: number): string {
  const name = OPTION_NAMES.get(code);
  return name === undefined ? `option ${code}` : `option ${code} (${name})`;
}

// ---------------------------------------------------------------------------------------------
// Decoding

function u32(b: Uint8Array, at: number): number {
  return b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}

function quad(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

type Area = 'options' | 'file' | 'sname';

/**
 * Collects the options of one field into `chunks` (per code, in order, as views of the input: no
 * copies yet). Stops at END or where the field ends (see the module comment).
 */
function scan(b: Uint8Array, start: number, end: number, area: Area, chunks: Map<number, Uint8Array[]>): void {
  let p = start;
  while (p < end) {
    const code = b[p]!;
    if (code === Option.PAD) {
      p++;
      continue;
    }
    if (code === Option.END) return;
    const field = optionField(code);
    if (p + 1 >= end) throw new DhcpDecodeError(field, `length octet cut off: the ${area} field ends at byte ${end}`, p);
    const len = b[p + 1]!;
    if (p + 2 + len > end) {
      const over = p + 2 + len - end;
      throw new DhcpDecodeError(field, `length ${len} runs ${over} octet${over === 1 ? '' : 's'} past the end of the ${area} field`, p + 1);
    }
    if (code === Option.OVERLOAD && area !== 'options') {
      throw new DhcpDecodeError(field, `found in the ${area} field: it belongs in the options field (RFC 2131 §4.1)`, p);
    }
    let list = chunks.get(code);
    if (!list) chunks.set(code, (list = []));
    list.push(b.subarray(p + 2, p + 2 + len));
    p += 2 + len;
  }
}

function exactly(v: Buffer, code: number, n: number): void {
  if (v.length !== n) throw new DhcpDecodeError(optionField(code), `must be ${n} octet${n === 1 ? '' : 's'}, is ${v.length}`);
}

function addressList(v: Buffer, code: number): string[] {
  if (v.length === 0 || v.length % 4 !== 0) {
    throw new DhcpDecodeError(optionField(code), `an address list must be a non-zero multiple of 4 octets, is ${v.length}`);
  }
  const out: string[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(quad(v, i));
  return out;
}

function withoutTrailingNuls(v: Buffer): Buffer {
  let n = v.length;
  while (n > 0 && v[n - 1] === 0) n--;
  return v.subarray(0, n);
}

const MAX_NAME = 253; // RFC 1035 §2.3.4: 255 on the wire, 253 in text without the trailing dot

/** A host or domain name as configuration may use it; throws naming `field` otherwise. */
function dnsNameProblem(s: Uint8Array): string | undefined {
  if (s.length === 0) return 'empty';
  let label = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === 0x2e) {
      if (label === 0) return `empty label at octet ${i}`;
      label = 0;
      continue;
    }
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
    if (!ok) return `octet 0x${c.toString(16).padStart(2, '0')} at ${i} is not a letter, digit, '-', '_' or '.'`;
    if (++label > 63) return `label longer than 63 octets at octet ${i}`;
  }
  const text = s[s.length - 1] === 0x2e ? s.length - 1 : s.length;
  if (text > MAX_NAME) return `${text} octets, more than ${MAX_NAME}`;
  return undefined;
}

function dnsName(v: Buffer, code: number): string {
  const s = withoutTrailingNuls(v);
  const problem = dnsNameProblem(s);
  if (problem) throw new DhcpDecodeError(optionField(code), `not a DNS name: ${problem}`);
  return s.toString('latin1');
}

/** For logs: printable ASCII kept, '\' doubled, every other octet \xHH. */
export function escapeText(v: Uint8Array): string {
  let s = '';
  for (const c of v) {
    if (c === 0x5c) s += '\\\\';
    else if (c >= 0x20 && c <= 0x7e) s += String.fromCharCode(c);
    else s += `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return s;
}

const REQUEST_TYPES: ReadonlySet<number> = new Set([1, 3, 4, 7, 8]);

/**
 * Decodes one DHCP message (a UDP payload). Throws DhcpDecodeError on anything malformed; bytes
 * after END are ignored (padding).
 */
export function decodeMessage(input: Uint8Array): DhcpMessage {
  const b = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (b.length < OPTIONS_AT) throw new DhcpDecodeError('length', `${b.length} octets: the fixed fields and magic cookie take ${OPTIONS_AT}`);
  const op = b[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) throw new DhcpDecodeError('op', `must be 1 (BOOTREQUEST) or 2 (BOOTREPLY), is ${op}`, 0);
  const hlen = b[2]!;
  if (hlen > MAX_HLEN) throw new DhcpDecodeError('hlen', `${hlen} octets: chaddr holds ${MAX_HLEN}`, 2);
  const cookie = b.readUInt32BE(COOKIE_AT);
  if (cookie !== COOKIE) throw new DhcpDecodeError('cookie', `0x${cookie.toString(16).padStart(8, '0')} is not the DHCP magic cookie 0x63825363`, COOKIE_AT);

  const chunks = new Map<number, Uint8Array[]>();
  scan(b, OPTIONS_AT, b.length, 'options', chunks);
  const overloadChunks = chunks.get(Option.OVERLOAD);
  if (overloadChunks) {
    const v = Buffer.concat(overloadChunks);
    exactly(v, Option.OVERLOAD, 1);
    const which = v[0]!;
    if (which < 1 || which > 3) throw new DhcpDecodeError(optionField(Option.OVERLOAD), `must be 1 (file), 2 (sname) or 3 (both), is ${which}`);
    // RFC 3396 §7: options field first, then file, then sname
    if (which & 1) scan(b, FILE_AT, FILE_END, 'file', chunks);
    if (which & 2) scan(b, SNAME_AT, SNAME_END, 'sname', chunks);
  }
  const options = new Map<number, Buffer>();
  for (const [code, list] of chunks) options.set(code, Buffer.concat(list));

  const typeBytes = options.get(Option.MESSAGE_TYPE);
  if (!typeBytes) throw new DhcpDecodeError(optionField(Option.MESSAGE_TYPE), 'missing: a DHCP message must have one (RFC 2131 §3)');
  exactly(typeBytes, Option.MESSAGE_TYPE, 1);
  const type = typeBytes[0]!;
  if (type < 1 || type > 8) throw new DhcpDecodeError(optionField(Option.MESSAGE_TYPE), `${type} is not a message type (1-8)`);
  // RFC 2131 Table 1: a client's messages are BOOTREQUESTs, a server's BOOTREPLYs
  if ((op === BOOTREQUEST) !== REQUEST_TYPES.has(type)) {
    throw new DhcpDecodeError('op', `${op === BOOTREQUEST ? 'BOOTREQUEST' : 'BOOTREPLY'} with message type ${type}, which the other side sends`, 0);
  }

  const m: DhcpMessage = {
    op: op as 1 | 2,
    htype: b[1]!,
    xid: b.readUInt32BE(4),
    secs: b.readUInt16BE(8),
    broadcast: (b[10]! & 0x80) !== 0,
    ciaddr: quad(b, 12),
    yiaddr: quad(b, 16),
    siaddr: quad(b, 20),
    giaddr: quad(b, 24),
    chaddr: Buffer.from(b.subarray(28, 28 + hlen)),
    type: type as MessageTypeNumber,
    options,
  };
  const get = (code: number): Buffer | undefined => options.get(code);
  let v: Buffer | undefined;
  if ((v = get(Option.CLIENT_ID))) {
    if (v.length < 2) throw new DhcpDecodeError(optionField(Option.CLIENT_ID), `must be at least 2 octets (type and identifier, RFC 2132 §9.14), is ${v.length}`);
    m.clientId = v;
  }
  const address = (code: number): string | undefined => {
    const a = get(code);
    if (!a) return undefined;
    exactly(a, code, 4);
    return quad(a, 0);
  };
  const seconds = (code: number): number | undefined => {
    const a = get(code);
    if (!a) return undefined;
    exactly(a, code, 4);
    return u32(a, 0);
  };
  const set = <K extends keyof DhcpMessage>(k: K, value: DhcpMessage[K] | undefined): void => {
    if (value !== undefined) m[k] = value;
  };
  set('serverId', address(Option.SERVER_ID));
  set('requestedAddress', address(Option.REQUESTED_ADDRESS));
  set('subnetMask', address(Option.SUBNET_MASK));
  set('leaseSeconds', seconds(Option.LEASE_TIME));
  set('renewalSeconds', seconds(Option.RENEWAL_TIME));
  set('rebindingSeconds', seconds(Option.REBINDING_TIME));
  if ((v = get(Option.ROUTER))) m.routers = addressList(v, Option.ROUTER);
  if ((v = get(Option.DNS))) m.dns = addressList(v, Option.DNS);
  if ((v = get(Option.DOMAIN))) m.domain = dnsName(v, Option.DOMAIN);
  if ((v = get(Option.HOSTNAME))) m.hostname = dnsName(v, Option.HOSTNAME);
  if ((v = get(Option.MESSAGE))) m.message = escapeText(withoutTrailingNuls(v));
  if ((v = get(Option.RAPID_COMMIT))) {
    exactly(v, Option.RAPID_COMMIT, 0); // RFC 4039 §4
    m.rapidCommit = true;
  }
  if ((v = get(Option.PARAMETER_REQUEST))) {
    if (v.length === 0) throw new DhcpDecodeError(optionField(Option.PARAMETER_REQUEST), 'empty (RFC 2132 §9.8: at least 1 octet)');
    m.parameterRequest = [...v];
  }
  if ((v = get(Option.MAX_SIZE))) {
    exactly(v, Option.MAX_SIZE, 2);
    const size = v.readUInt16BE(0);
    if (size < 576) throw new DhcpDecodeError(optionField(Option.MAX_SIZE), `${size} is below 576, the least RFC 2132 §9.10 allows`);
    m.maxMessageSize = size;
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Dotted quad -> 4 octets; strict: four decimal numbers 0-255, no leading zeros (no octal doubts). */
function parseQuad(s: unknown, field: string): Buffer {
  if (typeof s !== 'string' || !/^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/.test(s)) {
    throw new DhcpEncodeError(field, `${JSON.stringify(s)} is not a dotted-quad IPv4 address`);
  }
  const parts = s.split('.').map(Number);
  if (parts.some((n) => n > 255)) throw new DhcpEncodeError(field, `${JSON.stringify(s)} has a part above 255`);
  return Buffer.from(parts);
}

function uint(v: unknown, field: string, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new DhcpEncodeError(field, `must be an integer 0-${max}, is ${String(v)}`);
  return v;
}

/** RFC 2131 Table 5: what each client message must, may and must not carry. */
function checkTable5(m: ClientMessage): void {
  const t = m.type;
  const has = (k: keyof ClientMessage): boolean => m[k] !== undefined && m[k] !== false;
  const forbid = (k: keyof ClientMessage, why: string): void => {
    if (has(k)) throw new DhcpEncodeError(k, `not in ${article(t)}: ${why}`);
  };
  const need = (k: keyof ClientMessage, why: string): void => {
    if (!has(k)) throw new DhcpEncodeError(k, `required in ${article(t)}: ${why}`);
  };
  const ciaddr = m.ciaddr !== undefined && m.ciaddr !== '0.0.0.0';
  if (t === MessageType.DISCOVER) {
    if (ciaddr) throw new DhcpEncodeError('ciaddr', 'must be 0 in a DISCOVER');
    forbid('serverId', 'a DISCOVER goes to every server');
  } else if (t === MessageType.REQUEST) {
    // SELECTING: server id and requested address; INIT-REBOOT: requested address alone;
    // RENEWING/REBINDING: ciaddr alone (RFC 2131 §4.3.2)
    if (ciaddr) {
      forbid('requestedAddress', 'renewing or rebinding, the address is ciaddr');
      forbid('serverId', 'renewing or rebinding (RFC 2131 §4.3.2)');
    } else {
      need('requestedAddress', 'selecting or in INIT-REBOOT, without ciaddr');
    }
  } else if (t === MessageType.DECLINE) {
    if (ciaddr) throw new DhcpEncodeError('ciaddr', 'must be 0 in a DECLINE');
    need('requestedAddress', 'the address declined');
    need('serverId', 'the server whose offer is declined');
  } else if (t === MessageType.RELEASE) {
    if (!ciaddr) throw new DhcpEncodeError('ciaddr', 'required in a RELEASE: the address released');
    forbid('requestedAddress', 'the address released is ciaddr');
    need('serverId', 'the server whose lease is released');
  } else {
    if (!ciaddr) throw new DhcpEncodeError('ciaddr', 'required in an INFORM: the address already configured');
    forbid('requestedAddress', 'nothing is requested');
    forbid('serverId', 'an INFORM goes to every server');
  }
  if (t === MessageType.DECLINE || t === MessageType.RELEASE) {
    for (const k of ['hostname', 'parameterRequest', 'maxMessageSize'] as const) forbid(k, 'only server id, client id and message go with it');
  } else {
    forbid('message', 'only a DECLINE or RELEASE carries one');
  }
  if (t !== MessageType.DISCOVER) forbid('rapidCommit', 'only a DISCOVER asks for it (RFC 4039 §3)');
}

const TYPE_NAMES: Record<number, string> = { 1: 'DISCOVER', 2: 'OFFER', 3: 'REQUEST', 4: 'DECLINE', 5: 'ACK', 6: 'NAK', 7: 'RELEASE', 8: 'INFORM' };
const article = (t: number): string => `${t === 8 ? 'an' : 'a'} ${TYPE_NAMES[t]}`;

/**
 * A client's message: BOOTREQUEST, htype 1 (Ethernet), magic cookie, the options in the order busybox
 * udhcpc writes them (53, 50, 54, 57, 55, 12, then 61, 80, 56), END, zero-padded to at least 300
 * octets. At most 548 octets (a 576-octet datagram, what every server must take): a message that
 * needs more is refused rather than overloaded into sname/file, which no client needs.
 */
export function encodeClientMessage(m: ClientMessage): Buffer {
  if (!REQUEST_TYPES.has(m.type)) throw new DhcpEncodeError('type', `${String(m.type)} is not a client message type (1, 3, 4, 7 or 8)`);
  uint(m.xid, 'xid', 0xffffffff);
  const secs = uint(m.secs ?? 0, 'secs', 0xffff);
  if (!Buffer.isBuffer(m.chaddr) || m.chaddr.length !== 6) throw new DhcpEncodeError('chaddr', `must be 6 octets (htype 1, Ethernet), is ${Buffer.isBuffer(m.chaddr) ? m.chaddr.length : typeof m.chaddr}`);
  if (!Buffer.isBuffer(m.clientId) || m.clientId.length < 2 || m.clientId.length > 255) {
    throw new DhcpEncodeError('clientId', 'must be 2-255 octets (type and identifier, RFC 2132 §9.14)');
  }
  checkTable5(m);
  const ciaddr = m.ciaddr === undefined ? Buffer.alloc(4) : parseQuad(m.ciaddr, 'ciaddr');

  const opts: Buffer[] = [];
  const put = (code: number, value: Uint8Array): void => {
    opts.push(Buffer.from([code, value.length]), Buffer.from(value));
  };
  put(Option.MESSAGE_TYPE, Buffer.from([m.type]));
  if (m.requestedAddress !== undefined) put(Option.REQUESTED_ADDRESS, parseQuad(m.requestedAddress, 'requestedAddress'));
  if (m.serverId !== undefined) put(Option.SERVER_ID, parseQuad(m.serverId, 'serverId'));
  if (m.maxMessageSize !== undefined) {
    const size = uint(m.maxMessageSize, 'maxMessageSize', 0xffff);
    if (size < 576) throw new DhcpEncodeError('maxMessageSize', `${size} is below 576, the least RFC 2132 §9.10 allows`);
    const v = Buffer.alloc(2);
    v.writeUInt16BE(size);
    put(Option.MAX_SIZE, v);
  }
  if (m.parameterRequest !== undefined) {
    const list = m.parameterRequest;
    if (!Array.isArray(list) || list.length === 0 || list.length > 255) throw new DhcpEncodeError('parameterRequest', 'must list 1-255 option codes');
    put(Option.PARAMETER_REQUEST, Buffer.from(list.map((c, i) => {
      const code = uint(c, `parameterRequest[${i}]`, 255);
      if (code === Option.PAD || code === Option.END) throw new DhcpEncodeError(`parameterRequest[${i}]`, `${code} is PAD or END, not an option`);
      return code;
    })));
  }
  if (m.hostname !== undefined) {
    const v = typeof m.hostname === 'string' ? Buffer.from(m.hostname, 'latin1') : Buffer.alloc(0);
    const problem = typeof m.hostname !== 'string' ? 'not a string' : v.length > 255 ? 'longer than 255 octets' : dnsNameProblem(v);
    if (problem) throw new DhcpEncodeError('hostname', `not a DNS name: ${problem}`);
    put(Option.HOSTNAME, v);
  }
  put(Option.CLIENT_ID, m.clientId);
  if (m.rapidCommit) put(Option.RAPID_COMMIT, Buffer.alloc(0));
  if (m.message !== undefined) {
    if (typeof m.message !== 'string' || !/^[\x20-\x7e]{1,255}$/.test(m.message)) {
      throw new DhcpEncodeError('message', 'must be 1-255 printable ASCII characters');
    }
    put(Option.MESSAGE, Buffer.from(m.message, 'latin1'));
  }
  opts.push(Buffer.from([Option.END]));
  const optionBytes = opts.reduce((n, x) => n + x.length, 0);
  const length = Math.max(MIN_ENCODED, OPTIONS_AT + optionBytes);
  if (length > MIN_MAX_MESSAGE) throw new DhcpEncodeError('options', `${length} octets, more than the ${MIN_MAX_MESSAGE} every server must accept`);

  const out = Buffer.alloc(length);
  out[0] = BOOTREQUEST;
  out[1] = 1; // htype: Ethernet
  out[2] = 6; // hlen
  out.writeUInt32BE(m.xid, 4);
  out.writeUInt16BE(secs, 8);
  out.writeUInt16BE(m.broadcast ? 0x8000 : 0, 10);
  ciaddr.copy(out, 12);
  m.chaddr.copy(out, 28);
  out.writeUInt32BE(COOKIE, COOKIE_AT);
  let p = OPTIONS_AT;
  for (const x of opts) p += x.copy(out, p);
  return out;
}
