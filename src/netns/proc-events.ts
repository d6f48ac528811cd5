/**
 * The process events connector's wire format (linux/connector.h, linux/cn_proc.h): protocol only,
 * no I/O (ProcEventMonitor in proc-monitor.ts does the socket). A datagram from the kernel is one
 * netlink message of type NLMSG_DONE holding a struct cn_msg whose data is one struct proc_event.
 *
 * Everything here is in host byte order: the connector copies kernel structs as they are (not
 * netlink's little-endian convention that message.ts assumes), so this codec reads nlmsghdr too
 * with the host's order rather than through decodeMessages.
 *
 * Seen on Linux 6.18 and 6.1 (test/fixtures/proc-events): every event's cn_msg.len is 40,
 * sizeof(struct proc_event), whatever the kind; the kernel overwrites cn_msg.seq and proc_event.cpu
 * of every message, acks included, with its own per-CPU counter and CPU, so only cn_msg.ack (the
 * request's ack + 1) ties an ack to a request.
 */
import { endianness } from 'node:os';
import { align4, NLMSG_DONE, NLMSG_HDRLEN } from './netlink/constants.js';

/** struct cb_id of the process events connector. */
export const CN_IDX_PROC = 1;
export const CN_VAL_PROC = 1;

/** enum proc_cn_mcast_op: the data of a subscription request (a u32). */
export const PROC_CN_MCAST_LISTEN = 1;
export const PROC_CN_MCAST_IGNORE = 2;

/** enum what of struct proc_event: single bits, so that a set of kinds is a mask. */
export const ProcEventWhat = {
  none: 0x0,
  fork: 0x1,
  exec: 0x2,
  uid: 0x4,
  gid: 0x40,
  sid: 0x80,
  ptrace: 0x100,
  comm: 0x200,
  coredump: 0x40000000,
  exit: 0x80000000,
} as const;

/** sizeof(struct cn_msg) without its data. */
export const CN_MSG_HDRLEN = 20;
/** what, cpu and the 8-aligned timestamp_ns come before the union. */
const EVENT_HDRLEN = 16;
/** Bytes of struct proc_event each kind needs (the header plus its union member). */
const NEEDED = {
  ack: EVENT_HDRLEN + 4,
  fork: EVENT_HDRLEN + 16,
  exec: EVENT_HDRLEN + 8,
  exit: EVENT_HDRLEN + 24,
  other: EVENT_HDRLEN,
} as const;

/**
 * Pids are as the initial pid namespace sees them; `pid` is the thread's id, `tgid` its process's
 * (equal for a process's main thread). A new thread is a fork whose childPid differs from childTgid.
 */
export type ProcEvent =
  | { kind: 'fork'; parentPid: number; parentTgid: number; childPid: number; childTgid: number }
  | { kind: 'exec'; pid: number; tgid: number }
  /**
   * exitCode: the wait status (code << 8, or the terminating signal; 0x300 for `exit 3`, 9 for
   * SIGKILL). exitSignal: the signal the parent is told with (task->exit_signal: 17, SIGCHLD, for a
   * process; -1 for a thread, which tells no one). parentPid/parentTgid: 0 for a thread (seen on 6.18).
   */
  | { kind: 'exit'; pid: number; tgid: number; exitCode: number; exitSignal: number; parentPid: number; parentTgid: number }
  /** uid, gid, sid, ptrace, comm, coredump, or a kind newer than this code: `what` says which. */
  | { kind: 'other'; what: number }
  /**
   * PROC_EVENT_NONE: the answer to a subscription request, multicast to every listener. `ack` is
   * the request's cn_msg.ack + 1; `err` a positive errno (0: done).
   */
  | { kind: 'ack'; ack: number; err: number };

export type ProcEventKind = ProcEvent['kind'];

/** Bytes that are not a well-formed process events datagram. Nothing else is ever thrown by decodeProcEvents. */
export class ProcEventDecodeError extends Error {
  /** Byte offset into the datagram. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} (at byte ${offset})`);
    this.offset = offset;
  }
}
Object.defineProperty(ProcEventDecodeError.prototype, 'name', { value: 'ProcEventDecodeError', configurable: true, writable: true });

const littleEndian = endianness() === 'LE';

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Decodes one datagram into its events, in order. Strict where the kernel is exact, so that damage
 * shows: nlmsg_type must be NLMSG_DONE, cb_id the process connector's, nlmsg_len exactly the
 * header, cn_msg and cn_msg.len bytes, and cn_msg.len at least what the event's kind needs (more is
 * accepted: the struct may grow at its end).
 */
export function decodeProcEvents(data: Uint8Array): ProcEvent[] {
  if (!(data instanceof Uint8Array)) throw new ProcEventDecodeError('not a byte array', 0);
  const v = view(data);
  const out: ProcEvent[] = [];
  if (data.length === 0) throw new ProcEventDecodeError('empty datagram', 0);
  let off = 0;
  while (off < data.length) {
    const left = data.length - off;
    if (left < NLMSG_HDRLEN) throw new ProcEventDecodeError(`${left} bytes cannot hold a netlink header`, off);
    const nlmsgLen = v.getUint32(off, littleEndian);
    const type = v.getUint16(off + 4, littleEndian);
    if (nlmsgLen < NLMSG_HDRLEN + CN_MSG_HDRLEN) throw new ProcEventDecodeError(`nlmsg_len ${nlmsgLen} cannot hold a cn_msg`, off);
    if (nlmsgLen > left) throw new ProcEventDecodeError(`nlmsg_len ${nlmsgLen} exceeds the ${left} bytes left`, off);
    if (type !== NLMSG_DONE) throw new ProcEventDecodeError(`nlmsg_type ${type}, not NLMSG_DONE`, off + 4);
    out.push(decodeCnMsg(v, off + NLMSG_HDRLEN, nlmsgLen - NLMSG_HDRLEN));
    off += Math.min(align4(nlmsgLen), left);
  }
  return out;
}

/** struct cn_msg at `at` with `room` bytes of the netlink payload. */
function decodeCnMsg(v: DataView, at: number, room: number): ProcEvent {
  const idx = v.getUint32(at, littleEndian);
  const val = v.getUint32(at + 4, littleEndian);
  if (idx !== CN_IDX_PROC || val !== CN_VAL_PROC) throw new ProcEventDecodeError(`cb_id ${idx}:${val} is not the process connector's`, at);
  const ack = v.getUint32(at + 12, littleEndian);
  const len = v.getUint16(at + 16, littleEndian);
  if (len !== room - CN_MSG_HDRLEN) {
    throw new ProcEventDecodeError(`cn_msg.len ${len} disagrees with nlmsg_len (${room - CN_MSG_HDRLEN} bytes of data)`, at + 16);
  }
  const ev = at + CN_MSG_HDRLEN;
  if (len < EVENT_HDRLEN) throw new ProcEventDecodeError(`cn_msg.len ${len} cannot hold a proc_event`, at + 16);
  const what = v.getUint32(ev, littleEndian);
  const u = ev + EVENT_HDRLEN;
  const need = (kind: keyof typeof NEEDED): void => {
    if (len < NEEDED[kind]) throw new ProcEventDecodeError(`cn_msg.len ${len} too short for a ${kind} event (${NEEDED[kind]})`, at + 16);
  };
  const i32 = (o: number): number => v.getInt32(o, littleEndian);
  switch (what) {
    case ProcEventWhat.none:
      need('ack');
      return { kind: 'ack', ack, err: v.getUint32(u, littleEndian) };
    case ProcEventWhat.fork:
      need('fork');
      return { kind: 'fork', parentPid: i32(u), parentTgid: i32(u + 4), childPid: i32(u + 8), childTgid: i32(u + 12) };
    case ProcEventWhat.exec:
      need('exec');
      return { kind: 'exec', pid: i32(u), tgid: i32(u + 4) };
    case ProcEventWhat.exit:
      need('exit');
      return {
        kind: 'exit',
        pid: i32(u),
        tgid: i32(u + 4),
        exitCode: v.getUint32(u + 8, littleEndian),
        exitSignal: i32(u + 12),
        parentPid: i32(u + 16),
        parentTgid: i32(u + 20),
      };
    default:
      return { kind: 'other', what };
  }
}

export interface SubscriptionRequest {
  /** Stamped on nlmsghdr and cn_msg; the kernel does not echo it (see the module comment). */
  seq: number;
  /** cn_msg.ack: the kernel's ack carries this + 1, the only way to know it answers this request. */
  ack: number;
  /** nlmsg_pid: the sending socket's port id. */
  portId: number;
}

/** A PROC_CN_MCAST_LISTEN or _IGNORE request: nlmsghdr + cn_msg + the u32 op (the pre-6.6 form every kernel takes). */
export function encodeProcSubscription(op: 'listen' | 'ignore', req: SubscriptionRequest): Buffer {
  const length = NLMSG_HDRLEN + CN_MSG_HDRLEN + 4;
  const b = Buffer.alloc(length);
  const v = view(b);
  v.setUint32(0, length, littleEndian);
  v.setUint16(4, NLMSG_DONE, littleEndian);
  v.setUint16(6, 0, littleEndian);
  v.setUint32(8, req.seq >>> 0, littleEndian);
  v.setUint32(12, req.portId >>> 0, littleEndian);
  const cn = NLMSG_HDRLEN;
  v.setUint32(cn, CN_IDX_PROC, littleEndian);
  v.setUint32(cn + 4, CN_VAL_PROC, littleEndian);
  v.setUint32(cn + 8, req.seq >>> 0, littleEndian);
  v.setUint32(cn + 12, req.ack >>> 0, littleEndian);
  v.setUint16(cn + 16, 4, littleEndian);
  v.setUint16(cn + 18, 0, littleEndian);
  v.setUint32(cn + CN_MSG_HDRLEN, op === 'listen' ? PROC_CN_MCAST_LISTEN : PROC_CN_MCAST_IGNORE, littleEndian);
  return b;
}
