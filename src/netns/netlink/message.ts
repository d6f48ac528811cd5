import { align4, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, NLMSG_OVERRUN } from './constants.js';
import { NetlinkDecodeError } from './errors.js';
import { formatHeaderFlags, type FlagContext } from './flags.js';

/** struct nlmsghdr. */
export interface NetlinkHeader {
  /** nlmsg_len: header plus payload, without trailing padding. */
  length: number;
  type: number;
  flags: number;
  seq: number;
  /** nlmsg_pid: the sender's port id (0 from the kernel), or in replies the requester's. */
  pid: number;
}

export interface NetlinkMessage {
  header: NetlinkHeader;
  /** The bytes after the header (a view into the received datagram). */
  payload: Buffer;
  /** Offset of this message's header in the datagram. */
  offset: number;
}

/** A request before the socket stamps sequence number and port id on it. */
export interface NetlinkRequest {
  type: number;
  flags: number;
  /** Fixed header (ifinfomsg, ifaddrmsg, rtgenmsg...) followed by attributes, already aligned. */
  body: Buffer;
}

export function encodeHeader(h: NetlinkHeader): Buffer {
  const b = Buffer.alloc(NLMSG_HDRLEN);
  b.writeUInt32LE(h.length, 0);
  b.writeUInt16LE(h.type, 4);
  b.writeUInt16LE(h.flags, 6);
  b.writeUInt32LE(h.seq >>> 0, 8);
  b.writeUInt32LE(h.pid >>> 0, 12);
  return b;
}

export function decodeHeader(buf: Uint8Array, offset = 0): NetlinkHeader {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (offset < 0 || b.length - offset < NLMSG_HDRLEN) throw new NetlinkDecodeError(`truncated netlink header: ${b.length - offset} bytes`, offset);
  return {
    length: b.readUInt32LE(offset),
    type: b.readUInt16LE(offset + 4),
    flags: b.readUInt16LE(offset + 6),
    seq: b.readUInt32LE(offset + 8),
    pid: b.readUInt32LE(offset + 12),
  };
}

/** One message: header + body (body already padded by its builders; padded here to 4 if not). */
export function encodeMessage(req: NetlinkRequest, seq: number, pid = 0): Buffer {
  const length = NLMSG_HDRLEN + req.body.length;
  const out = Buffer.alloc(align4(length));
  encodeHeader({ length, type: req.type, flags: req.flags, seq, pid }).copy(out, 0);
  req.body.copy(out, NLMSG_HDRLEN);
  return out;
}

/**
 * Splits a datagram into messages. Throws NetlinkDecodeError when a header claims more bytes than
 * there are, less than a header, or when bytes are left over that cannot hold a header.
 */
export function decodeMessages(data: Uint8Array): NetlinkMessage[] {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: NetlinkMessage[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLMSG_HDRLEN) throw new NetlinkDecodeError(`${buf.length - off} trailing bytes after the last message`, off);
    const header = decodeHeader(buf, off);
    if (header.length < NLMSG_HDRLEN) throw new NetlinkDecodeError(`nlmsg_len ${header.length} shorter than a header`, off);
    if (header.length > buf.length - off) throw new NetlinkDecodeError(`nlmsg_len ${header.length} exceeds the ${buf.length - off} bytes left`, off);
    out.push({ header, payload: buf.subarray(off + NLMSG_HDRLEN, off + header.length), offset: off });
    off += Math.min(align4(header.length), buf.length - off);
  }
  return out;
}

const CONTROL_NAMES: Record<number, string> = {
  [NLMSG_NOOP]: 'NLMSG_NOOP',
  [NLMSG_ERROR]: 'NLMSG_ERROR',
  [NLMSG_DONE]: 'NLMSG_DONE',
  [NLMSG_OVERRUN]: 'NLMSG_OVERRUN',
};

export interface MessageNaming {
  typeName(type: number): string | undefined;
  flagContext(type: number): FlagContext;
}

/** "RTM_NEWLINK seq=3 pid=0 flags=REQUEST|ACK|EXCL|CREATE len=76": for logs and test failures. */
export function formatHeader(h: NetlinkHeader, naming?: MessageNaming): string {
  const name = CONTROL_NAMES[h.type] ?? naming?.typeName(h.type) ?? `type ${h.type}`;
  const ctx: FlagContext = h.type === NLMSG_ERROR ? 'ack' : h.type < 0x10 ? 'plain' : naming?.flagContext(h.type) ?? 'plain';
  return `${name} seq=${h.seq} pid=${h.pid} flags=${formatHeaderFlags(h.flags, ctx)} len=${h.length}`;
}
