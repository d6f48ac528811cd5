import { NetlinkDecodeError } from '../netlink/errors.js';
import { HeaderFlags } from '../netlink/flags.js';
import type { NetlinkRequest } from '../netlink/message.js';
import { decodeAttrs, PolicyEncoder } from '../netlink/policy.js';
import type { Route, RouteCreate, RouteSelector } from '../types.js';
import { AF, RT_SCOPE, RT_TABLE, RTA, RTMSG_LEN, RTM, RTN } from './constants.js';
import { formatIPv4, formatIPv6, parseIPv4 } from './inet.js';
import { routePolicy } from './policy.js';

/** struct rtmsg. */
export interface RtMsg {
  family: number;
  dstLen: number;
  srcLen: number;
  tos: number;
  /** Table id up to 255; RT_TABLE_UNSPEC when RTA_TABLE carries a larger one. */
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
}

export function encodeRtMsg(h: Partial<RtMsg> = {}): Buffer {
  const b = Buffer.alloc(RTMSG_LEN);
  b.writeUInt8(h.family ?? AF.UNSPEC, 0);
  b.writeUInt8(h.dstLen ?? 0, 1);
  b.writeUInt8(h.srcLen ?? 0, 2);
  b.writeUInt8(h.tos ?? 0, 3);
  b.writeUInt8(h.table ?? RT_TABLE.UNSPEC, 4);
  b.writeUInt8(h.protocol ?? 0, 5);
  b.writeUInt8(h.scope ?? RT_SCOPE.UNIVERSE, 6);
  b.writeUInt8(h.type ?? RTN.UNSPEC, 7);
  b.writeUInt32LE((h.flags ?? 0) >>> 0, 8);
  return b;
}

export function decodeRtMsg(payload: Buffer, base = 0): RtMsg {
  if (payload.length < RTMSG_LEN) throw new NetlinkDecodeError(`rtmsg needs ${RTMSG_LEN} bytes, got ${payload.length}`, base);
  return {
    family: payload.readUInt8(0),
    dstLen: payload.readUInt8(1),
    srcLen: payload.readUInt8(2),
    tos: payload.readUInt8(3),
    table: payload.readUInt8(4),
    protocol: payload.readUInt8(5),
    scope: payload.readUInt8(6),
    type: payload.readUInt8(7),
    flags: payload.readUInt32LE(8),
  };
}

function u8(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new RangeError(`${what} must be an integer from 0 to 255: ${n}`);
}

function u32(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${what} must be an integer from 0 to 0xffffffff: ${n}`);
}

function ipv4(what: string, text: string): Uint8Array {
  const b = parseIPv4(text);
  if (b === undefined) throw new RangeError(`${what}: not an IPv4 address: ${JSON.stringify(text)}`);
  return b;
}

/** Table id to rtm_table (+ RTA_TABLE above 255), as iproute2 does. */
function putTable(e: PolicyEncoder, table: number): number {
  u32('table', table);
  if (table < 256) return table;
  e.put(RTA.TABLE, table);
  return RT_TABLE.UNSPEC;
}

/** The destination (RTA_DST unless default), checked; returns rtm_dst_len. */
function putDst(e: PolicyEncoder, dst: string | undefined, dstLength: number | undefined): number {
  if (dst === undefined) {
    if (dstLength !== undefined && dstLength !== 0) throw new RangeError(`dstLength ${dstLength} without a dst`);
    return 0;
  }
  const len = dstLength ?? 32;
  if (!Number.isInteger(len) || len < 0 || len > 32) throw new RangeError(`invalid IPv4 prefix length ${len}`);
  const bytes = ipv4('dst', dst);
  if (len > 0) e.put(RTA.DST, bytes);
  return len;
}

/**
 * The attributes of a new or deleted route, in iproute2's order for `ip route add|del DST via GW
 * metric M src S table T dev D`.
 */
function routeBody(sel: RouteSelector & { prefsrc?: string }, e: PolicyEncoder): { dstLen: number; table: number } {
  if ((sel.family as number) !== 4) throw new RangeError(`only IPv4 routes are supported, not family ${String(sel.family)}`);
  const dstLen = putDst(e, sel.dst, sel.dstLength);
  if (sel.gateway !== undefined) e.put(RTA.GATEWAY, ipv4('gateway', sel.gateway));
  if (sel.priority !== undefined) {
    u32('priority', sel.priority);
    e.put(RTA.PRIORITY, sel.priority);
  }
  if (sel.prefsrc !== undefined) e.put(RTA.PREFSRC, ipv4('prefsrc', sel.prefsrc));
  const table = putTable(e, sel.table ?? RT_TABLE.MAIN);
  if (sel.oif !== undefined) {
    if (!Number.isInteger(sel.oif) || sel.oif <= 0) throw new RangeError(`invalid oif ${sel.oif}`);
    e.put(RTA.OIF, sel.oif);
  }
  return { dstLen, table };
}

/**
 * RTM_NEWROUTE with NLM_F_CREATE|NLM_F_EXCL for a unicast IPv4 route, byte for byte what
 * `ip route add default via GW dev D proto dhcp` sends: rtmsg { AF_INET, dst_len, table,
 * protocol, scope, RTN_UNICAST }, RTA_GATEWAY, RTA_OIF. EEXIST when the table already has a route
 * to that destination with that metric (any gateway); ENETUNREACH when the gateway is not on a
 * connected network of the device.
 */
export function newRouteRequest(req: RouteCreate): NetlinkRequest {
  if (req.oif === undefined) throw new TypeError('a route needs its output device (oif)');
  u8('protocol', req.protocol);
  const scope = req.scope ?? (req.gateway !== undefined ? RT_SCOPE.UNIVERSE : RT_SCOPE.LINK);
  u8('scope', scope);
  const e = new PolicyEncoder(routePolicy);
  const { dstLen, table } = routeBody(req, e);
  return {
    type: RTM.NEWROUTE,
    flags: HeaderFlags.of('request', 'ack', 'create', 'excl').value,
    body: Buffer.concat([encodeRtMsg({ family: AF.INET, dstLen, table, protocol: req.protocol, scope, type: RTN.UNICAST }), e.encode()]),
  };
}

/**
 * RTM_DELROUTE as `ip route del DST via GW dev D proto P`: rtm_scope RT_SCOPE_NOWHERE and rtm_type
 * RTN_UNSPEC match any route; protocol 0 matches any, as do an absent gateway, oif or priority.
 * The kernel deletes the first match and answers ESRCH when there is none.
 */
export function delRouteRequest(sel: RouteSelector): NetlinkRequest {
  if (sel.protocol !== undefined) u8('protocol', sel.protocol);
  const e = new PolicyEncoder(routePolicy);
  const { dstLen, table } = routeBody(sel, e);
  return {
    type: RTM.DELROUTE,
    flags: HeaderFlags.of('request', 'ack').value,
    body: Buffer.concat([encodeRtMsg({ family: AF.INET, dstLen, table, protocol: sel.protocol ?? 0, scope: RT_SCOPE.NOWHERE, type: RTN.UNSPEC }), e.encode()]),
  };
}

export interface RouteDumpOptions {
  /** Default: every family (IPv4 and IPv6 routes are decoded, others skipped). */
  family?: 4 | 6 | undefined;
  /** Default RT_TABLE_MAIN; RT_TABLE_UNSPEC (0) for every table. */
  table?: number | undefined;
}

/**
 * RTM_GETROUTE dump as `ip -4 route show` sends it: rtmsg with only rtm_family, then RTA_TABLE.
 * With NETLINK_GET_STRICT_CHK the kernel filters by family and table (replies flagged
 * NLM_F_DUMP_FILTERED); without it, it dumps every table and the reader filters.
 */
export function dumpRoutesRequest(opts: RouteDumpOptions = {}): NetlinkRequest {
  const e = new PolicyEncoder(routePolicy);
  const table = opts.table ?? RT_TABLE.MAIN;
  u32('table', table);
  if (table !== RT_TABLE.UNSPEC) e.put(RTA.TABLE, table);
  const family = opts.family === 4 ? AF.INET : opts.family === 6 ? AF.INET6 : AF.UNSPEC;
  return { type: RTM.GETROUTE, flags: HeaderFlags.of('request', 'dump').value, body: Buffer.concat([encodeRtMsg({ family }), e.encode()]) };
}

function address(family: 4 | 6, raw: Buffer | undefined, what: string, base: number): string | undefined {
  if (raw === undefined) return undefined;
  const want = family === 4 ? 4 : 16;
  if (raw.length !== want) throw new NetlinkDecodeError(`${what}: IPv${family} address of ${raw.length} bytes`, base);
  return family === 4 ? formatIPv4(raw) : formatIPv6(raw);
}

/** An RTM_NEWROUTE / RTM_DELROUTE payload as a Route; undefined for families other than 4 and 6. */
export function decodeRoute(payload: Buffer, base = 0): Route | undefined {
  const h = decodeRtMsg(payload, base);
  if (h.family !== AF.INET && h.family !== AF.INET6) return undefined;
  const family = h.family === AF.INET ? 4 : 6;
  const a = decodeAttrs(payload, routePolicy, RTMSG_LEN, payload.length, base + RTMSG_LEN);
  return {
    family,
    dst: h.dstLen === 0 ? undefined : address(family, a.raw(RTA.DST), 'RTA_DST', base),
    dstLength: h.dstLen,
    gateway: address(family, a.raw(RTA.GATEWAY), 'RTA_GATEWAY', base),
    oif: a.number(RTA.OIF),
    table: a.number(RTA.TABLE) ?? h.table,
    protocol: h.protocol,
    scope: h.scope,
    type: h.type,
    priority: a.number(RTA.PRIORITY) ?? 0,
    prefsrc: address(family, a.raw(RTA.PREFSRC), 'RTA_PREFSRC', base),
  };
}

/**
 * Whether a route is a default route (destination length 0), of any type: an unreachable or
 * blackhole default also means the namespace already decided where traffic goes.
 */
export function isDefaultRoute(r: Route): boolean {
  return r.dstLength === 0;
}
