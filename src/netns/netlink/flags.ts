/**
 * nlmsg_flags as a typed set. The upper byte means different things by message kind
 * (linux/netlink.h): GET requests (ROOT/MATCH/ATOMIC), NEW requests (REPLACE/EXCL/CREATE/APPEND),
 * DELETE requests (NONREC/BULK) and acks (CAPPED/ACK_TLVS), so formatting takes a context.
 */

export const HeaderFlag = {
  request: 0x01,
  multi: 0x02,
  ack: 0x04,
  echo: 0x08,
  dumpIntr: 0x10,
  dumpFiltered: 0x20,
  // GET requests
  root: 0x100,
  match: 0x200,
  atomic: 0x400,
  dump: 0x300,
  // NEW requests
  replace: 0x100,
  excl: 0x200,
  create: 0x400,
  append: 0x800,
  // DELETE requests
  nonrec: 0x100,
  bulk: 0x200,
  // acks (NLMSG_ERROR)
  capped: 0x100,
  ackTlvs: 0x200,
} as const;

export type HeaderFlagName = keyof typeof HeaderFlag;

/** Which meaning the upper byte has. */
export type FlagContext = 'get' | 'new' | 'delete' | 'ack' | 'plain';

const COMMON: Array<[number, string]> = [
  [0x01, 'REQUEST'], [0x02, 'MULTI'], [0x04, 'ACK'], [0x08, 'ECHO'], [0x10, 'DUMP_INTR'], [0x20, 'DUMP_FILTERED'],
];
const UPPER: Record<FlagContext, Array<[number, string]>> = {
  get: [[0x300, 'DUMP'], [0x100, 'ROOT'], [0x200, 'MATCH'], [0x400, 'ATOMIC']],
  new: [[0x100, 'REPLACE'], [0x200, 'EXCL'], [0x400, 'CREATE'], [0x800, 'APPEND']],
  delete: [[0x100, 'NONREC'], [0x200, 'BULK']],
  ack: [[0x100, 'CAPPED'], [0x200, 'ACK_TLVS']],
  plain: [],
};

export class HeaderFlags {
  private constructor(readonly value: number) {}

  static of(...names: HeaderFlagName[]): HeaderFlags {
    let v = 0;
    for (const n of names) v |= HeaderFlag[n];
    return new HeaderFlags(v);
  }

  static from(value: number): HeaderFlags {
    if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new RangeError(`nlmsg_flags out of range: ${value}`);
    return new HeaderFlags(value);
  }

  /** True when every named flag is set. */
  has(...names: HeaderFlagName[]): boolean {
    for (const n of names) if ((this.value & HeaderFlag[n]) !== HeaderFlag[n]) return false;
    return true;
  }

  with(...names: HeaderFlagName[]): HeaderFlags {
    return new HeaderFlags(this.value | HeaderFlags.of(...names).value);
  }

  without(...names: HeaderFlagName[]): HeaderFlags {
    return new HeaderFlags(this.value & ~HeaderFlags.of(...names).value & 0xffff);
  }

  /** "REQUEST|ACK|EXCL|CREATE"; bits without a name in this context print as hex. */
  format(context: FlagContext = 'plain'): string {
    return formatHeaderFlags(this.value, context);
  }

  toString(): string {
    return this.format();
  }
}

export function formatHeaderFlags(value: number, context: FlagContext = 'plain'): string {
  const parts: string[] = [];
  let rest = value;
  for (const [bit, name] of [...COMMON, ...UPPER[context]]) {
    if ((rest & bit) === bit && bit !== 0) {
      parts.push(name);
      rest &= ~bit;
    }
  }
  if (rest !== 0) parts.push(`0x${rest.toString(16)}`);
  return parts.length === 0 ? '0' : parts.join('|');
}
