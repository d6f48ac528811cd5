import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

/** errno number -> symbolic code, preferring the kernel's names where libc has aliases. */
const CODES = new Map<number, string>();
for (const [name, num] of Object.entries(osConstants.errno)) if (!CODES.has(num)) CODES.set(num, name);
for (const name of ['EOPNOTSUPP', 'EAGAIN', 'EDEADLK'] as const) {
  const num = (osConstants.errno as Record<string, number>)[name];
  if (num !== undefined) CODES.set(num, name);
}

export function errnoCode(errno: number): string {
  return CODES.get(errno) ?? `E${errno}`;
}

export function errnoNumber(code: string): number | undefined {
  return (osConstants.errno as Record<string, number | undefined>)[code];
}

function describe(errno: number): string {
  try {
    const entry = getSystemErrorMap().get(-errno);
    if (entry) return entry[1];
  } catch {
    // older runtimes: no description
  }
  return errnoCode(errno);
}

export interface NetlinkErrorInit {
  op: string;
  errno: number;
  seq: number;
  extack?: string | undefined;
  offset?: number | undefined;
  /** NLMSGERR_ATTR_MISS_TYPE: the type of a required attribute that was missing. */
  missingType?: number | undefined;
}

/**
 * The kernel refused a request: built from NLMSG_ERROR (error < 0) or from NLMSG_DONE carrying an
 * error, with the extended ack's message and offset when the kernel sent them. Also used for
 * synthetic failures of a request (ETIMEDOUT when no reply came in time).
 */
export class NetlinkError extends Error {
  readonly op: string;
  /** Positive errno. */
  readonly errno: number;
  readonly code: string;
  readonly seq: number;
  /** NLMSGERR_ATTR_MSG. */
  readonly extack?: string;
  /** NLMSGERR_ATTR_OFFS: byte offset of the offending attribute in our request (from its nlmsghdr). */
  readonly offset?: number;
  readonly missingType?: number;

  constructor(init: NetlinkErrorInit) {
    const code = errnoCode(init.errno);
    const where = init.offset !== undefined ? ` (at byte ${init.offset})` : '';
    const text = init.extack !== undefined && init.extack !== '' ? `: ${init.extack}${where}` : where;
    super(`${init.op}: ${code} (${describe(init.errno)})${text}`);
    this.name = 'NetlinkError';
    this.op = init.op;
    this.errno = init.errno;
    this.code = code;
    this.seq = init.seq;
    if (init.extack !== undefined) this.extack = init.extack;
    if (init.offset !== undefined) this.offset = init.offset;
    if (init.missingType !== undefined) this.missingType = init.missingType;
  }
}

/** A dump ended with NLM_F_DUMP_INTR seen on one of its messages: the set changed while dumping. */
export class DumpInterruptedError extends Error {
  readonly op: string;
  readonly seq: number;
  readonly attempts: number;
  constructor(op: string, seq: number, attempts: number) {
    super(`${op}: dump interrupted by concurrent changes (NLM_F_DUMP_INTR) ${attempts} time(s) in a row`);
    this.name = 'DumpInterruptedError';
    this.op = op;
    this.seq = seq;
    this.attempts = attempts;
  }
}

/**
 * A request named a target nsid but the reply did not echo it: the kernel answered for the
 * socket's own namespace (kernels before 4.20 ignore IFLA_TARGET_NETNSID / IFA_TARGET_NETNSID).
 */
export class TargetNsidUnsupportedError extends Error {
  readonly op: string;
  readonly targetNsid: number;
  constructor(op: string, targetNsid: number, detail = 'reply did not echo the target nsid') {
    super(`${op}: target nsid ${targetNsid} not honoured by this kernel: ${detail}`);
    this.name = 'TargetNsidUnsupportedError';
    this.op = op;
    this.targetNsid = targetNsid;
  }
}

/** Bytes that are not a well-formed netlink message or attribute. */
export class NetlinkDecodeError extends Error {
  /** Byte offset into the buffer being decoded. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} (at byte ${offset})`);
    this.name = 'NetlinkDecodeError';
    this.offset = offset;
  }
}

/**
 * A change to a link in another namespace that netlink cannot address by nsid: RTM_SETLINK (and
 * RTM_NEWLINK on an existing link) read IFLA_TARGET_NETNSID as "move the link there", looking the
 * link up in the socket's own namespace. Such changes need a socket opened inside the namespace.
 */
export class CrossNamespaceError extends Error {
  readonly op: string;
  readonly targetNsid: number | undefined;
  constructor(op: string, targetNsid: number | undefined, detail: string) {
    super(`${op}: cannot change a link in namespace ${targetNsid !== undefined ? `nsid ${targetNsid}` : '(by fd)'}: ${detail}`);
    this.name = 'CrossNamespaceError';
    this.op = op;
    this.targetNsid = targetNsid;
  }
}
