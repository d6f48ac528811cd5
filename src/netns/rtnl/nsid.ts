import { HeaderFlags } from '../netlink/flags.js';
import type { NetlinkRequest } from '../netlink/message.js';
import { decodeAttrs, PolicyEncoder } from '../netlink/policy.js';
import { NETNSA, NETNSA_NSID_NOT_ASSIGNED, RTGENMSG_LEN, RTM } from './constants.js';
import { nsidPolicy } from './policy.js';

/** struct rtgenmsg { unsigned char rtgen_family; } padded to 4 bytes, family AF_UNSPEC. */
const RTGENMSG = Buffer.alloc(RTGENMSG_LEN);

function checkFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`invalid namespace fd ${fd}`);
}

/** RTM_GETNSID with NETNSA_FD: the nsid our namespace has for that one (NLM_F_REQUEST only). */
export function getNsidRequest(nsFd: number): NetlinkRequest {
  checkFd(nsFd);
  const e = new PolicyEncoder(nsidPolicy).put(NETNSA.FD, nsFd);
  return { type: RTM.GETNSID, flags: HeaderFlags.of('request').value, body: Buffer.concat([RTGENMSG, e.encode()]) };
}

/** RTM_NEWNSID with NETNSA_FD and NETNSA_NSID (-1: the kernel picks), as `ip netns set NAME auto`. */
export function newNsidRequest(nsFd: number, nsid = NETNSA_NSID_NOT_ASSIGNED): NetlinkRequest {
  checkFd(nsFd);
  const e = new PolicyEncoder(nsidPolicy).put(NETNSA.FD, nsFd).put(NETNSA.NSID, nsid);
  return { type: RTM.NEWNSID, flags: HeaderFlags.of('request', 'ack').value, body: Buffer.concat([RTGENMSG, e.encode()]) };
}

/** RTM_GETNSID dump; with NETNSA_TARGET_NSID, the nsids as seen from that namespace. */
export function dumpNsidsRequest(targetNsid?: number): NetlinkRequest {
  const e = new PolicyEncoder(nsidPolicy).maybe(NETNSA.TARGET_NSID, targetNsid);
  return { type: RTM.GETNSID, flags: HeaderFlags.of('request', 'dump').value, body: Buffer.concat([RTGENMSG, e.encode()]) };
}

export interface NsidInfo {
  /** NETNSA_NSID; undefined when NETNSA_NSID_NOT_ASSIGNED (-1) or absent. */
  nsid: number | undefined;
  /**
   * NETNSA_CURRENT_NSID (replies to a dump with NETNSA_TARGET_NSID): the same namespace's nsid as
   * seen from ours; undefined when we have none for it (including our own namespace).
   */
  currentNsid: number | undefined;
  /** NETNSA_TARGET_NSID echo. */
  targetNsid: number | undefined;
}

/** An RTM_NEWNSID / RTM_DELNSID payload (reply or event). */
export function decodeNsid(payload: Buffer, base = 0): NsidInfo {
  const a = decodeAttrs(payload, nsidPolicy, Math.min(RTGENMSG_LEN, payload.length), payload.length, base + RTGENMSG_LEN);
  const assigned = (v: number | undefined): number | undefined => (v === undefined || v === NETNSA_NSID_NOT_ASSIGNED ? undefined : v);
  return {
    nsid: assigned(a.number(NETNSA.NSID)),
    currentNsid: assigned(a.number(NETNSA.CURRENT_NSID)),
    targetNsid: a.number(NETNSA.TARGET_NSID),
  };
}
