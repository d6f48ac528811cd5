/**
 * The socket protocol between ontap (client) and ontapd, version 1.
 *
 * Transport: a SOCK_SEQPACKET unix socket, one JSON object per record (UTF-8), so record
 * boundaries are the kernel's and no framing is needed. One connection holds at most one device:
 * the connection is the lease.
 *
 *   client -> daemon   AllocateRequest   + SCM_RIGHTS [netns fd]      (ipvlan, macvlan)
 *   daemon -> client   AllocateReply     + SCM_RIGHTS [tap fd x queues] (ipvtap, macvtap)
 *   daemon -> client   ErrorReply        (then the daemon closes the connection)
 *
 * This module holds types and constants only: the client imports it without pulling in zod.
 * What a request may hold is the table in request-rules.ts; the daemon validates requests with
 * the zod schema built from it (src/ontapd/request-schema.ts).
 */

export const PROTOCOL_VERSION = 1;
/** Largest request record ontapd reads; longer ones are refused as too large. */
export const MAX_REQUEST_BYTES = 4096;
/** Largest reply record a client must be ready to read. */
export const MAX_REPLY_BYTES = 16384;
export const MAX_QUEUES = 16;

/** RFC 1035 label (with RFC 1123's leading digit): what ontap-zone can publish as NAME.DOMAIN. */
export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const DNS_LABEL_RULE = '1-63 of a-z, 0-9 and "-", not starting or ending with "-"';

export const deviceTypes = ['ipvlan', 'ipvtap', 'macvlan', 'macvtap'] as const;
export type DeviceType = (typeof deviceTypes)[number];
export const ipvlanModes = ['l2', 'l3', 'l3s'] as const;
export const ipvlanFlags = ['bridge', 'private', 'vepa'] as const;
export const macvlanModes = ['bridge', 'private', 'vepa', 'passthru'] as const;

export const tapTypes = ['ipvtap', 'macvtap'] as const satisfies readonly DeviceType[];
export const ipvlanFamily = ['ipvlan', 'ipvtap'] as const satisfies readonly DeviceType[];

export function isTapType(t: DeviceType): t is (typeof tapTypes)[number] {
  return (tapTypes as readonly DeviceType[]).includes(t);
}
export function isIpvlanFamily(t: DeviceType): t is (typeof ipvlanFamily)[number] {
  return (ipvlanFamily as readonly DeviceType[]).includes(t);
}

export interface AllocateRequest {
  v: typeof PROTOCOL_VERSION;
  op: 'allocate';
  type: DeviceType;
  /** Tap types: queues to open (1..16), one descriptor each. Others: must be 1 or absent. */
  queues?: number;
  /** Workload name, a DNS label; stored as the device alias (IFLA_IFALIAS). */
  name?: string;
  /** ipvlan/ipvtap: l2 | l3 | l3s; macvlan/macvtap: bridge | private | vepa | passthru. */
  mode?: string;
  /** ipvlan/ipvtap only: bridge | private | vepa. */
  flag?: string;
  /**
   * ipvlan/macvlan only: "dhcp", ontapd leases an IPv4 address for the device from the LAN's DHCP
   * server and holds it for as long as the connection lives; the reply comes once it is bound.
   */
  ipv4?: string;
}

export const ipv4Methods = ['dhcp'] as const;
export const namespacedTypes = ['ipvlan', 'macvlan'] as const satisfies readonly DeviceType[];

/** The IPv4 configuration ontapd put on the device (ipv4: "dhcp"), as the server granted it. */
export interface Ipv4Info {
  /** The address, and the prefix length of its subnet (option 1). */
  address: string;
  prefixLength: number;
  /** The first router (option 3); absent when the server gave none. */
  gateway?: string;
  /** Whether ontapd added a default route via the gateway (not when the namespace had one). */
  defaultRoute: boolean;
  /** Name servers (option 6), in the server's order. */
  dns: string[];
  /** Domain name (option 15). */
  domain?: string;
  /** The lease's length in seconds as granted; ontapd renews it. */
  leaseSeconds: number;
  /** The server that granted it (option 54). */
  server: string;
}

export interface DeviceInfo {
  type: DeviceType;
  ifname: string;
  ifindex: number;
  /** The device's hardware address; for ipvtap/ipvlan it is the uplink's, which guests must use. */
  hwaddr: string;
  mtu: number;
  /** ipvlan/macvlan: the id under which ontapd's namespace knows the caller's namespace. */
  nsid?: number;
  /** Tap types: how many descriptors travel with the reply, in queue order. */
  queues: number;
  /** Tap types: the descriptors carry a virtio_net_hdr (IFF_VNET_HDR) before each frame. */
  vnetHdr: boolean;
  mode: string;
  flag?: string;
  name?: string;
  uplink: string;
  /** ipv4: "dhcp" requests: the lease ontapd holds for the device. */
  ipv4?: Ipv4Info;
}

export interface AllocateReply {
  v: typeof PROTOCOL_VERSION;
  ok: true;
  device: DeviceInfo;
}

export const errorCodes = [
  'bad-request', // unreadable, oversized, truncated, unknown field or value
  'forbidden', // the peer may not have this (namespace rule)
  'conflict', // mode or family clash on the uplink, second request on one connection
  'limit', // device caps reached
  'unavailable', // the uplink is gone or not usable
  'timeout', // no request within the request timeout
  'internal', // a kernel or daemon failure
] as const;
export type ErrorCode = (typeof errorCodes)[number];

export interface ProtocolError {
  code: ErrorCode;
  message: string;
  /** The request field at fault, as a dotted path, when there is one. */
  field?: string;
}

export interface ErrorReply {
  v: typeof PROTOCOL_VERSION;
  ok: false;
  error: ProtocolError;
}

export type Reply = AllocateReply | ErrorReply;
