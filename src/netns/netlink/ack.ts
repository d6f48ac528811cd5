import { AttributeDecoder } from './attribute.js';
import { align4, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSGERR_ATTR } from './constants.js';
import { NetlinkDecodeError, NetlinkError } from './errors.js';
import { HeaderFlag } from './flags.js';
import { decodeHeader, type NetlinkHeader, type NetlinkMessage } from './message.js';

/** What an NLMSG_ERROR (or an NLMSG_DONE with a status) says. */
export interface AckInfo {
  /** Positive errno; 0 for a plain ack or a successful DONE. */
  errno: number;
  /** The header of the request being answered (NLMSG_ERROR only). */
  request?: NetlinkHeader;
  extack?: string;
  offset?: number;
  missingType?: number;
  missingNest?: number;
  cookie?: Buffer;
}

function parseTlvs(msg: NetlinkMessage, from: number, into: AckInfo): void {
  if ((msg.header.flags & HeaderFlag.ackTlvs) === 0 || from >= msg.payload.length) return;
  const d = new AttributeDecoder(msg.payload, from, msg.payload.length, msg.offset + NLMSG_HDRLEN);
  while (d.next()) {
    switch (d.type()) {
      case NLMSGERR_ATTR.msg: into.extack = d.string(); break;
      case NLMSGERR_ATTR.offs: into.offset = d.u32(); break;
      case NLMSGERR_ATTR.missType: into.missingType = d.u32(); break;
      case NLMSGERR_ATTR.missNest: into.missingNest = d.u32(); break;
      case NLMSGERR_ATTR.cookie: into.cookie = Buffer.from(d.bytes()); break;
      default: break; // NLMSGERR_ATTR_POLICY and newer: not needed
    }
  }
  const e = d.err();
  if (e) throw e;
}

/**
 * Parses NLMSG_ERROR: struct nlmsgerr { int error; struct nlmsghdr msg; } followed by the rest of
 * the request unless NLM_F_CAPPED (the kernel always caps successful acks; errors only with
 * NETLINK_CAP_ACK), then, when NLM_F_ACK_TLVS, the extended ack attributes (NETLINK_EXT_ACK).
 */
export function parseError(msg: NetlinkMessage): AckInfo {
  if (msg.header.type !== NLMSG_ERROR) throw new NetlinkDecodeError(`not NLMSG_ERROR: type ${msg.header.type}`, msg.offset);
  const p = msg.payload;
  if (p.length < 4 + NLMSG_HDRLEN) throw new NetlinkDecodeError(`NLMSG_ERROR payload of ${p.length} bytes, need ${4 + NLMSG_HDRLEN}`, msg.offset);
  const error = p.readInt32LE(0);
  const request = decodeHeader(p, 4);
  const info: AckInfo = { errno: error < 0 ? -error : error, request };
  const capped = (msg.header.flags & HeaderFlag.capped) !== 0;
  let tlvs = 4 + NLMSG_HDRLEN;
  if (!capped) {
    if (request.length < NLMSG_HDRLEN || 4 + request.length > p.length) {
      throw new NetlinkDecodeError(`NLMSG_ERROR echoes a request of ${request.length} bytes in ${p.length - 4}`, msg.offset);
    }
    tlvs = 4 + request.length;
  }
  parseTlvs(msg, align4(tlvs), info);
  return info;
}

/** Parses NLMSG_DONE: an int status (negative errno when the dump failed) then ack TLVs. */
export function parseDone(msg: NetlinkMessage): AckInfo {
  if (msg.header.type !== NLMSG_DONE) throw new NetlinkDecodeError(`not NLMSG_DONE: type ${msg.header.type}`, msg.offset);
  const p = msg.payload;
  if (p.length < 4) return { errno: 0 };
  const status = p.readInt32LE(0);
  const info: AckInfo = { errno: status < 0 ? -status : 0 };
  parseTlvs(msg, 4, info);
  return info;
}

export function netlinkErrorFrom(op: string, seq: number, ack: AckInfo): NetlinkError {
  return new NetlinkError({ op, errno: ack.errno, seq, extack: ack.extack, offset: ack.offset, missingType: ack.missingType });
}
