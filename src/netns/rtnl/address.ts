import { NetlinkDecodeError } from '../netlink/errors.js';
import { HeaderFlags } from '../netlink/flags.js';
import type { NetlinkRequest } from '../netlink/message.js';
import { decodeAttrs, PolicyEncoder } from '../netlink/policy.js';
import { LIFETIME_FOREVER, type Address, type AddressCreate, type AddressSelector } from '../types.js';
import { AF, IFA, IFADDRMSG_LEN, RT_SCOPE, RTM } from './constants.js';
import { formatIPv4, formatIPv6, parseIPv4 } from './inet.js';
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

/** struct ifa_cacheinfo: ifa_prefered, ifa_valid, cstamp, tstamp (the kernel ignores the stamps). */
export const IFA_CACHEINFO_LEN = 16;

function ipv4(what: string, text: string): Uint8Array {
  const b = parseIPv4(text);
  if (b === undefined) throw new RangeError(`${what}: not an IPv4 address: ${JSON.stringify(text)}`);
  return b;
}

function checkSelector(sel: AddressSelector): Uint8Array {
  if ((sel.family as number) !== 4) throw new RangeError(`only IPv4 addresses are supported, not family ${String(sel.family)}`);
  if (!Number.isInteger(sel.ifindex) || sel.ifindex <= 0) throw new RangeError(`invalid ifindex ${sel.ifindex}`);
  if (!Number.isInteger(sel.prefixLength) || sel.prefixLength < 0 || sel.prefixLength > 32) throw new RangeError(`invalid IPv4 prefix length ${sel.prefixLength}`);
  return ipv4('address', sel.address);
}

function checkLifetime(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > LIFETIME_FOREVER) throw new RangeError(`${what} must be an integer from 0 to 0xffffffff (forever): ${n}`);
}

/** ifaddrmsg + IFA_LOCAL + IFA_ADDRESS (both the address: no peer), as iproute2 starts both requests. */
function addressBody(sel: AddressSelector, scope: number, e: PolicyEncoder): Buffer {
  const local = checkSelector(sel);
  e.put(IFA.LOCAL, local).put(IFA.ADDRESS, local);
  return encodeIfAddr({ family: AF.INET, prefixlen: sel.prefixLength, scope, index: sel.ifindex });
}

/**
 * RTM_NEWADDR for an IPv4 address with lifetimes, in iproute2's layout (`ip addr add|replace
 * A/N [brd B] dev D valid_lft V preferred_lft P`): ifaddrmsg (scope host for 127/8, else
 * universe), IFA_LOCAL, IFA_ADDRESS, IFA_BROADCAST, IFA_CACHEINFO. Without `replace`,
 * NLM_F_CREATE|NLM_F_EXCL (EEXIST when the address is there); with it, NLM_F_CREATE|NLM_F_REPLACE:
 * an existing address (same local address and prefix) keeps its place and takes the new lifetimes,
 * which is how a lease is renewed. Lifetimes the kernel would refuse (valid 0, preferred above
 * valid: EINVAL) are a RangeError here.
 */
export function newAddressRequest(req: AddressCreate & { replace: boolean }): NetlinkRequest {
  checkLifetime('validSeconds', req.validSeconds);
  checkLifetime('preferredSeconds', req.preferredSeconds);
  if (req.validSeconds === 0) throw new RangeError('validSeconds 0: delete the address instead');
  if (req.preferredSeconds > req.validSeconds) throw new RangeError(`preferredSeconds ${req.preferredSeconds} exceeds validSeconds ${req.validSeconds}`);
  const e = new PolicyEncoder(addrPolicy);
  const local = parseIPv4(req.address);
  const scope = local !== undefined && local[0] === 127 ? RT_SCOPE.HOST : RT_SCOPE.UNIVERSE;
  const header = addressBody(req, scope, e);
  if (req.broadcast !== undefined) e.put(IFA.BROADCAST, ipv4('broadcast', req.broadcast));
  const cache = Buffer.alloc(IFA_CACHEINFO_LEN);
  cache.writeUInt32LE(req.preferredSeconds, 0);
  cache.writeUInt32LE(req.validSeconds, 4);
  e.put(IFA.CACHEINFO, cache);
  return {
    type: RTM.NEWADDR,
    flags: HeaderFlags.of('request', 'ack', 'create', req.replace ? 'replace' : 'excl').value,
    body: Buffer.concat([header, e.encode()]),
  };
}

/**
 * RTM_DELADDR as `ip addr del A/N dev D`: ifaddrmsg (scope 0), IFA_LOCAL, IFA_ADDRESS. The kernel
 * deletes the address with that local address and prefix on that device, EADDRNOTAVAIL if none.
 */
export function delAddressRequest(sel: AddressSelector): NetlinkRequest {
  const e = new PolicyEncoder(addrPolicy);
  const header = addressBody(sel, RT_SCOPE.UNIVERSE, e);
  return { type: RTM.DELADDR, flags: HeaderFlags.of('request', 'ack').value, body: Buffer.concat([header, e.encode()]) };
}
