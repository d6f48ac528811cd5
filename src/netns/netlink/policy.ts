import { AttributeDecoder, AttributeEncoder, type NestOptions } from './attribute.js';
import { NetlinkDecodeError } from './errors.js';

/**
 * Attribute policies as data (sd-netlink's netlink-types-*.c idea): one table per attribute space
 * names each attribute and fixes its wire type. PolicyEncoder refuses values that do not fit the
 * table; decodeAttrs() reads by the same table, so encoder and decoder cannot disagree.
 */
export type AttrKind =
  | 'u8' | 'u16' | 'u32' | 's32' | 'u64'
  /** NUL-terminated on the wire. */
  | 'cstring'
  /** No terminator on the wire (NLA_STRING as iproute2 sends IFLA_IFALIAS); decoding stops at a NUL. */
  | 'string'
  | 'binary'
  | 'flag'
  | 'nested';

export interface AttrSpec {
  readonly name: string;
  readonly kind: AttrKind;
  /** For 'nested': the policy of the children, if fixed (IFLA_INFO_DATA's depends on the kind). */
  readonly policy?: Policy;
  /** For 'nested': bytes of fixed header before the children (VETH_INFO_PEER: ifinfomsg). */
  readonly headerBytes?: number;
}

type SpecInit = readonly [name: string, kind: AttrKind, policy?: Policy, headerBytes?: number];

export class Policy {
  private readonly specs = new Map<number, AttrSpec>();

  constructor(readonly name: string, table: Readonly<Record<number, SpecInit>>) {
    for (const [k, [name, kind, policy, headerBytes]] of Object.entries(table)) {
      const spec: AttrSpec = { name, kind, ...(policy ? { policy } : {}), ...(headerBytes ? { headerBytes } : {}) };
      this.specs.set(Number(k), spec);
    }
  }

  spec(type: number): AttrSpec | undefined {
    return this.specs.get(type);
  }

  nameOf(type: number): string {
    return this.specs.get(type)?.name ?? `${this.name}#${type}`;
  }

  /** Looks an attribute up by name: for tests and tables that want names, not numbers. */
  typeOf(name: string): number {
    for (const [t, s] of this.specs) if (s.name === name) return t;
    throw new Error(`${this.name}: no attribute named ${name}`);
  }
}

export type AttrValue = number | bigint | string | Buffer | boolean | DecodedAttrs;

/** Encodes attributes of one policy, checking each value against the table. */
export class PolicyEncoder {
  constructor(readonly policy: Policy, readonly encoder: AttributeEncoder = new AttributeEncoder()) {}

  private spec(type: number): AttrSpec {
    const s = this.policy.spec(type);
    if (!s) throw new TypeError(`${this.policy.name}: attribute ${type} is not in the policy`);
    return s;
  }

  put(type: number, value: number | bigint | string | Uint8Array | boolean): this {
    const s = this.spec(type);
    const bad = (): never => {
      throw new TypeError(`${this.policy.name}: ${s.name} is ${s.kind}, got ${typeof value}`);
    };
    const e = this.encoder;
    switch (s.kind) {
      case 'u8': typeof value === 'number' ? e.u8(type, value) : bad(); break;
      case 'u16': typeof value === 'number' ? e.u16(type, value) : bad(); break;
      case 'u32': typeof value === 'number' ? e.u32(type, value) : bad(); break;
      case 's32': typeof value === 'number' ? e.s32(type, value) : bad(); break;
      case 'u64': typeof value === 'bigint' ? e.u64(type, value) : bad(); break;
      case 'cstring': typeof value === 'string' ? e.cstring(type, value) : bad(); break;
      case 'string': typeof value === 'string' ? e.string(type, value) : bad(); break;
      case 'binary': value instanceof Uint8Array ? e.bytes(type, value) : bad(); break;
      case 'flag': value === true ? e.flag(type) : bad(); break;
      case 'nested': bad(); break;
    }
    return this;
  }

  /** Puts the attribute only when the value is defined. */
  maybe(type: number, value: number | bigint | string | Uint8Array | boolean | undefined): this {
    if (value !== undefined) this.put(type, value);
    return this;
  }

  nest(type: number, fn: (e: PolicyEncoder) => void, opts: NestOptions & { policy?: Policy } = {}): this {
    const s = this.spec(type);
    if (s.kind !== 'nested') throw new TypeError(`${this.policy.name}: ${s.name} is ${s.kind}, not nested`);
    const child = opts.policy ?? s.policy;
    if (!child) throw new TypeError(`${this.policy.name}: ${s.name} needs a policy for its children`);
    this.encoder.nested(type, (inner) => fn(new PolicyEncoder(child, inner)), opts);
    return this;
  }

  encode(): Buffer {
    return this.encoder.encode();
  }
}

export interface DecodedAttr {
  type: number;
  name: string;
  value: AttrValue;
  /** Header offset of the attribute in the outermost buffer. */
  offset: number;
  /** For nested attributes decoded without a policy and for binary ones: the payload. */
  raw: Buffer;
}

/** Attributes decoded by a policy; unknown types are kept as binary. Later duplicates are kept too. */
export class DecodedAttrs {
  constructor(readonly policy: Policy, readonly list: readonly DecodedAttr[]) {}

  has(type: number): boolean {
    return this.list.some((a) => a.type === type);
  }

  get(type: number): DecodedAttr | undefined {
    return this.list.find((a) => a.type === type);
  }

  all(type: number): DecodedAttr[] {
    return this.list.filter((a) => a.type === type);
  }

  private typed<T extends AttrValue>(type: number, check: (v: AttrValue) => v is T, what: string): T | undefined {
    const a = this.get(type);
    if (a === undefined) return undefined;
    if (!check(a.value)) throw new TypeError(`${this.policy.name}: ${a.name} is not ${what}`);
    return a.value;
  }

  number(type: number): number | undefined {
    return this.typed(type, (v): v is number => typeof v === 'number', 'a number');
  }

  string(type: number): string | undefined {
    return this.typed(type, (v): v is string => typeof v === 'string', 'a string');
  }

  nested(type: number): DecodedAttrs | undefined {
    return this.typed(type, (v): v is DecodedAttrs => v instanceof DecodedAttrs, 'nested with a policy');
  }

  /** The payload bytes of any attribute. */
  raw(type: number): Buffer | undefined {
    return this.get(type)?.raw;
  }

  /** A plain tree for comparisons and logs: [{ name, value }] with nested lists. */
  toTree(): AttrTree {
    return this.list.map((a) => ({
      type: a.type,
      name: a.name,
      value: a.value instanceof DecodedAttrs ? a.value.toTree() : Buffer.isBuffer(a.value) ? a.value.toString('hex') : a.value,
    }));
  }
}

export type AttrTree = Array<{ type: number; name: string; value: number | bigint | string | boolean | AttrTree }>;

function readValue(d: AttributeDecoder, spec: AttrSpec | undefined, base: Buffer, baseOffset: number): AttrValue {
  switch (spec?.kind) {
    case 'u8': return d.u8();
    case 'u16': return d.u16();
    case 'u32': return d.u32();
    case 's32': return d.s32();
    case 'u64': return d.u64();
    case 'cstring':
    case 'string': return d.string();
    case 'flag': return d.flag();
    case 'nested': {
      const child = spec.policy;
      if (!child) return Buffer.from(d.bytes());
      let out: DecodedAttrs | undefined;
      d.nested((c) => { out = collect(c, child, base, baseOffset); }, spec.headerBytes ?? 0);
      return out ?? new DecodedAttrs(child, []);
    }
    default: return Buffer.from(d.bytes());
  }
}

function collect(d: AttributeDecoder, policy: Policy, base: Buffer, baseOffset: number): DecodedAttrs {
  const list: DecodedAttr[] = [];
  while (d.next()) {
    const type = d.type();
    const spec = policy.spec(type);
    const offset = d.offset();
    const raw = Buffer.from(d.bytes());
    const value = readValue(d, spec, base, baseOffset);
    list.push({ type, name: spec?.name ?? policy.nameOf(type), value, offset, raw });
  }
  const e = d.err();
  if (e) throw e;
  return new DecodedAttrs(policy, list);
}

/**
 * Decodes the attributes in data[offset, end) by `policy`. Throws NetlinkDecodeError for malformed
 * input (never reads out of bounds). `base` is added to reported offsets.
 */
export function decodeAttrs(data: Uint8Array, policy: Policy, offset = 0, end = data.length, base = 0): DecodedAttrs {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (offset > end || end > buf.length) throw new NetlinkDecodeError('attribute range outside the buffer', base + offset);
  return collect(new AttributeDecoder(buf, offset, end, base), policy, buf, base);
}
