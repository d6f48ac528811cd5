import { NetlinkDecodeError } from '../netlink/errors.js';
import { HeaderFlags } from '../netlink/flags.js';
import type { NetlinkRequest } from '../netlink/message.js';
import { decodeAttrs, PolicyEncoder } from '../netlink/policy.js';
import type { Address } from '../types.js';
import { AF, IFA, IFADDRMSG_LEN, RTM } from './constants.js';
import { formatIPv4, formatIPv6 } from './inet.js';
import { addrPolicy } from './policy.js';

/** struct ifaddrmsg. */
export interface IfAddrMsg {
  family: number;
  prefixlen: number;
  flags: number;
  scope: number;
  index: number;
}

export function encodeIfAddr(h: Partial<IfAddrMsg> = {}): Buffer {
  const b = Buffer.alloc(IFADDRMSG_LEN);
  b.writeUInt8(h.family ?? AF.UNSPEC, 0);
  b.writeUInt8(h.prefixlen ?? 0, 1);
  b.writeUInt8(h.flags ?? 0, 2);
  b.writeUInt8(h.scope ?? 0, 3);
  b.writeUInt32LE(h.index ?? 0, 4);
  return b;
}

export function decodeIfAddr(payload: Buffer, base = 0): IfAddrMsg {
  if (payload.length < IFADDRMSG_LEN) throw new NetlinkDecodeError(`ifaddrmsg needs ${IFADDRMSG_LEN} bytes, got ${payload.length}`, base);
  return {
    family: payload.readUInt8(0),
    prefixlen: payload.readUInt8(1),
    flags: payload.readUInt8(2),
    scope: payload.readUInt8(3),
    index: payload.readUInt32LE(4),
  };
}

export interface AddressDumpOptions {
  targetNsid?: number | undefined;
  family?: 4 | 6 | undefined;
  ifindex?: number | undefined;
}

export function familyNumber(family: 4 | 6 | undefined): number {
  return family === 4 ? AF.INET : family === 6 ? AF.INET6 : AF.UNSPEC;
}

/**
 * RTM_GETADDR dump. With NETLINK_GET_STRICT_CHK the kernel filters by ifa_family and ifa_index in
 * the header and rejects attributes it does not know (so an unsupported IFA_TARGET_NETNSID fails
 * loudly rather than dumping our own namespace).
 */
export function dumpAddressesRequest(opts: AddressDumpOptions = {}): NetlinkRequest {
  const e = new PolicyEncoder(addrPolicy);
  e.maybe(IFA.TARGET_NETNSID, opts.targetNsid);
  return {
    type: RTM.GETADDR,
    flags: HeaderFlags.of('request', 'dump').value,
    body: Buffer.concat([encodeIfAddr({ family: familyNumber(opts.family), index: opts.ifindex ?? 0 }), e.encode()]),
  };
}

/** An RTM_NEWADDR / RTM_DELADDR payload as an Address; undefined for families other than 4 and 6. */
export function decodeAddress(payload: Buffer, base = 0): Address | undefined {
  const h = decodeIfAddr(payload, base);
  if (h.family !== AF.INET && h.family !== AF.INET6) return undefined;
  const a = decodeAttrs(payload, addrPolicy, IFADDRMSG_LEN, payload.length, base + IFADDRMSG_LEN);
  // IPv4: IFA_LOCAL is the interface's address, IFA_ADDRESS the peer on point-to-point links.
  const raw = a.raw(IFA.LOCAL) ?? a.raw(IFA.ADDRESS);
  if (raw === undefined) throw new NetlinkDecodeError('address message without IFA_LOCAL or IFA_ADDRESS', base);
  const family = h.family === AF.INET ? 4 : 6;
  const expected = family === 4 ? 4 : 16;
  if (raw.length !== expected) throw new NetlinkDecodeError(`IPv${family} address of ${raw.length} bytes`, base);
  const cache = a.raw(IFA.CACHEINFO);
  const hasCache = cache !== undefined && cache.length >= 8;
  return {
    nsid: a.number(IFA.TARGET_NETNSID),
    family,
    ifindex: h.index,
    address: family === 4 ? formatIPv4(raw) : formatIPv6(raw),
    prefixLength: h.prefixlen,
    scope: h.scope,
    flags: a.number(IFA.FLAGS) ?? h.flags,
    // struct ifa_cacheinfo { __u32 ifa_prefered; __u32 ifa_valid; __u32 cstamp; __u32 tstamp; }
    preferredLifetime: hasCache ? cache.readUInt32LE(0) : undefined,
    validLifetime: hasCache ? cache.readUInt32LE(4) : undefined,
  };
}
