import { align4, NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_HDRLEN, NLA_TYPE_MASK } from './constants.js';
import { NetlinkDecodeError } from './errors.js';

const MAX_ATTR_LEN = 0xffff;

function checkType(type: number): void {
  if (!Number.isInteger(type) || type < 0 || type > NLA_TYPE_MASK) throw new RangeError(`attribute type out of range: ${type}`);
}

function checkInt(value: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${what} out of range: ${value}`);
}

export interface NestOptions {
  /** Set NLA_F_NESTED on the type (iproute2 does not for the old rtnetlink nests). */
  flag?: boolean;
  /** Fixed bytes placed before the nested attributes (e.g. VETH_INFO_PEER's struct ifinfomsg). */
  header?: Uint8Array;
}

/**
 * Builds a sequence of netlink attributes: each is a 4-byte header (nla_len, nla_type) then the
 * payload, padded to 4 bytes; nla_len counts header and payload, not the padding.
 */
export class AttributeEncoder {
  private readonly parts: Buffer[] = [];
  private size = 0;

  get length(): number {
    return this.size;
  }

  private put(type: number, payload: Uint8Array): this {
    checkType(type & NLA_TYPE_MASK);
    const len = NLA_HDRLEN + payload.length;
    if (len > MAX_ATTR_LEN) throw new RangeError(`attribute ${type & NLA_TYPE_MASK} too long: ${len} bytes`);
    const buf = Buffer.alloc(align4(len));
    buf.writeUInt16LE(len, 0);
    buf.writeUInt16LE(type, 2);
    buf.set(payload, NLA_HDRLEN);
    this.parts.push(buf);
    this.size += buf.length;
    return this;
  }

  u8(type: number, value: number): this {
    checkInt(value, 0, 0xff, 'u8');
    return this.put(type, Uint8Array.of(value));
  }

  u16(type: number, value: number): this {
    checkInt(value, 0, 0xffff, 'u16');
    const b = Buffer.alloc(2);
    b.writeUInt16LE(value);
    return this.put(type, b);
  }

  u32(type: number, value: number): this {
    checkInt(value, 0, 0xffffffff, 'u32');
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    return this.put(type, b);
  }

  s32(type: number, value: number): this {
    checkInt(value, -0x80000000, 0x7fffffff, 's32');
    const b = Buffer.alloc(4);
    b.writeInt32LE(value);
    return this.put(type, b);
  }

  u64(type: number, value: bigint): this {
    if (value < 0n || value > 0xffffffffffffffffn) throw new RangeError(`u64 out of range: ${value}`);
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(value);
    return this.put(type, b);
  }

  /** A NUL-terminated string (NLA_NUL_STRING style; what iproute2 sends for IFLA_IFNAME). */
  cstring(type: number, value: string): this {
    if (value.includes('\0')) throw new RangeError('string contains NUL');
    return this.put(type, Buffer.from(`${value}\0`, 'utf8'));
  }

  /** A string without terminator (NLA_STRING; what iproute2 sends for IFLA_IFALIAS). */
  string(type: number, value: string): this {
    if (value.includes('\0')) throw new RangeError('string contains NUL');
    return this.put(type, Buffer.from(value, 'utf8'));
  }

  bytes(type: number, value: Uint8Array): this {
    return this.put(type, value);
  }

  /** A zero-length attribute (NLA_FLAG). */
  flag(type: number): this {
    return this.put(type, new Uint8Array(0));
  }

  nested(type: number, fn: (e: AttributeEncoder) => void, opts: NestOptions = {}): this {
    const child = new AttributeEncoder();
    fn(child);
    const header = opts.header ?? new Uint8Array(0);
    const padded = Buffer.alloc(align4(header.length));
    padded.set(header);
    return this.put(opts.flag === true ? type | NLA_F_NESTED : type, Buffer.concat([padded, child.encode()]));
  }

  /** Appends already-encoded attributes verbatim (must be 4-byte aligned). */
  raw(encoded: Uint8Array): this {
    if (encoded.length % 4 !== 0) throw new RangeError('raw attributes must be 4-byte aligned');
    const b = Buffer.from(encoded);
    this.parts.push(b);
    this.size += b.length;
    return this;
  }

  encode(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }
}

/**
 * Iterates attributes in a buffer, mdlayher-style: `while (d.next()) switch (d.type()) ...`.
 * The first problem (a malformed header, a payload of the wrong size for the accessor used, a
 * failure reported with fail()) is kept: next() then returns false and err() returns it. Accessors
 * never read outside the current attribute.
 */
export class AttributeDecoder {
  private readonly buf: Buffer;
  private pos: number;
  private readonly end: number;
  /** Absolute offset of buf[0] in the outermost buffer, so errors and offsets are meaningful. */
  private readonly base: number;
  private cur = -1;
  private curLen = 0;
  private curType = 0;
  private error: Error | undefined;

  constructor(data: Uint8Array, offset = 0, end = data.length, base = 0) {
    this.buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (offset < 0 || end > this.buf.length || offset > end) {
      this.buf = Buffer.alloc(0);
      this.pos = 0;
      this.end = 0;
      this.base = base;
      this.error = new NetlinkDecodeError('attribute range outside the buffer', base + offset);
      return;
    }
    this.pos = offset;
    this.end = end;
    this.base = base;
  }

  next(): boolean {
    if (this.error) return false;
    if (this.pos >= this.end) {
      this.cur = -1;
      return false;
    }
    if (this.end - this.pos < NLA_HDRLEN) {
      this.fail(`truncated attribute header: ${this.end - this.pos} bytes left`, this.pos);
      return false;
    }
    const len = this.buf.readUInt16LE(this.pos);
    if (len < NLA_HDRLEN || this.pos + len > this.end) {
      this.fail(`bad attribute length ${len} with ${this.end - this.pos} bytes left`, this.pos);
      return false;
    }
    this.cur = this.pos;
    this.curLen = len - NLA_HDRLEN;
    this.curType = this.buf.readUInt16LE(this.pos + 2);
    this.pos = Math.min(this.end, this.pos + align4(len));
    return true;
  }

  /** The attribute type without NLA_F_NESTED / NLA_F_NET_BYTEORDER. */
  type(): number {
    return this.curType & NLA_TYPE_MASK;
  }

  rawType(): number {
    return this.curType;
  }

  nestedFlag(): boolean {
    return (this.curType & NLA_F_NESTED) !== 0;
  }

  netByteOrder(): boolean {
    return (this.curType & NLA_F_NET_BYTEORDER) !== 0;
  }

  /** Payload length of the current attribute. */
  length(): number {
    return this.curLen;
  }

  /** Offset of the current attribute's header, counted from the start of the outermost buffer. */
  offset(): number {
    return this.base + this.cur;
  }

  err(): Error | undefined {
    return this.error;
  }

  /** Records a failure (the first one wins) and stops the iteration. */
  fail(message: string, at = this.cur): void {
    if (!this.error) this.error = new NetlinkDecodeError(message, this.base + Math.max(0, at));
  }

  private payload(size: number | undefined, what: string): Buffer | undefined {
    if (this.error || this.cur < 0) {
      this.fail(`${what}: no current attribute`);
      return undefined;
    }
    if (size !== undefined && this.curLen !== size) {
      this.fail(`${what}: attribute ${this.type()} has ${this.curLen} bytes, expected ${size}`);
      return undefined;
    }
    const start = this.cur + NLA_HDRLEN;
    return this.buf.subarray(start, start + this.curLen);
  }

  /** The payload (a view: copy it to keep it beyond the buffer's life). */
  bytes(): Buffer {
    return this.payload(undefined, 'bytes') ?? Buffer.alloc(0);
  }

  u8(): number {
    return this.payload(1, 'u8')?.readUInt8(0) ?? 0;
  }

  u16(): number {
    const p = this.payload(2, 'u16');
    if (!p) return 0;
    return this.netByteOrder() ? p.readUInt16BE(0) : p.readUInt16LE(0);
  }

  u32(): number {
    const p = this.payload(4, 'u32');
    if (!p) return 0;
    return this.netByteOrder() ? p.readUInt32BE(0) : p.readUInt32LE(0);
  }

  s32(): number {
    const p = this.payload(4, 's32');
    if (!p) return 0;
    return this.netByteOrder() ? p.readInt32BE(0) : p.readInt32LE(0);
  }

  u64(): bigint {
    const p = this.payload(8, 'u64');
    if (!p) return 0n;
    return this.netByteOrder() ? p.readBigUInt64BE(0) : p.readBigUInt64LE(0);
  }

  /** A string up to its first NUL (or the whole payload when there is none). */
  string(): string {
    const p = this.payload(undefined, 'string');
    if (!p) return '';
    const nul = p.indexOf(0);
    return p.toString('utf8', 0, nul < 0 ? p.length : nul);
  }

  flag(): boolean {
    return this.payload(0, 'flag') !== undefined;
  }

  /**
   * Decodes the current attribute's payload as nested attributes (skipping `headerBytes` of fixed
   * data first, 4-byte aligned). An error inside becomes this decoder's error.
   */
  nested(fn: (d: AttributeDecoder) => void, headerBytes = 0): void {
    const p = this.payload(undefined, 'nested');
    if (!p) return;
    const skip = align4(headerBytes);
    if (skip > p.length) {
      this.fail(`nested attribute ${this.type()}: ${p.length} bytes, shorter than its ${headerBytes}-byte header`);
      return;
    }
    const start = this.cur + NLA_HDRLEN;
    const child = new AttributeDecoder(this.buf, start + skip, start + p.length, this.base);
    try {
      fn(child);
    } catch (e) {
      if (!(e instanceof NetlinkDecodeError)) throw e;
      if (!child.err()) child.fail(e.message);
    }
    const ce = child.err();
    if (ce && !this.error) this.error = ce;
  }
}
