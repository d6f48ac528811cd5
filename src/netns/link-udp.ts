/**
 * UDP sockets for responders that live on one link of a workload's namespace (mDNS on 5353 now,
 * a DHCP client on 68 later): made inside the namespace, bound to one device, with the receiving
 * interface, destination and TTL / hop limit of every datagram (read them with the addon's
 * recvInet, send with sendInet). Node's dgram is no use here: it turns an IPv6 scope id into an
 * interface name of ITS namespace (a foreign ifindex loses the packet) and cannot read
 * IP_PKTINFO / IPV6_PKTINFO or the received TTL.
 */
import { endianness } from 'node:os';
import {
  AF_INET, AF_INET6, IP_ADD_MEMBERSHIP, IP_MULTICAST_IF, IP_MULTICAST_LOOP, IP_MULTICAST_TTL, IP_PKTINFO,
  IP_RECVTTL, IPPROTO_IP, IPPROTO_IPV6, IPPROTO_UDP, IPV6_JOIN_GROUP, IPV6_MULTICAST_HOPS, IPV6_MULTICAST_IF,
  IPV6_MULTICAST_LOOP, IPV6_RECVHOPLIMIT, IP_MULTICAST_ALL, IPV6_MULTICAST_ALL, IPV6_RECVPKTINFO, IPV6_V6ONLY, SO_BINDTODEVICE, SO_BINDTOIFINDEX,
  SO_BROADCAST, SO_REUSEADDR, SO_REUSEPORT, SOCK_DGRAM, SOL_SOCKET,
} from '../native/constants.js';
import { asNativeError, native } from '../native/index.js';
import { parseAddress } from './rtnl/inet.js';

export interface LinkSocketOptions {
  /** A descriptor of the network namespace the socket is made in. */
  netnsFd: number;
  family: 4 | 6;
  /** The device to bind to (SO_BINDTODEVICE), in that namespace. */
  ifname: string;
  /** Its ifindex in that namespace: checked against ifname's, used for the group and multicast sends. */
  ifindex: number;
  /** Bound on the wildcard address. */
  port: number;
  /** A multicast group to join on the device (224.0.0.251, ff02::fb, ...); joinLinkGroup joins later. */
  group?: string;
  /**
   * IP_MULTICAST_ALL / IPV6_MULTICAST_ALL: off, the socket receives multicast only for the groups
   * it joined itself, not every group some other socket of the namespace joined (the kernel's
   * default, on). Unicast to the socket's port arrives either way.
   */
  multicastAll?: boolean;
  /** IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS; the kernel's default (1) when absent. */
  multicastHops?: number;
  /** IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP; the kernel's default (on) when absent. */
  multicastLoop?: boolean;
  /** SO_BROADCAST (DHCP). */
  broadcast?: boolean;
}

/** What openLinkSocket was doing when it failed, in order. */
export type LinkSocketStep =
  | 'socket'
  | 'reuseaddr'
  | 'reuseport'
  | 'bindtodevice'
  | 'v6only'
  | 'pktinfo'
  | 'hoplimit'
  | 'multicast-if'
  | 'multicast-hops'
  | 'multicast-loop'
  | 'multicast-all'
  | 'broadcast'
  | 'bind'
  | 'join';

export class LinkSocketError extends Error {
  constructor(
    readonly step: LinkSocketStep,
    /** Symbolic errno: 'ENODEV', 'EADDRINUSE', 'EINVAL' (also for a bad group or ifname text), ... */
    readonly code: string,
    readonly errno: number,
    readonly ifname: string,
    readonly family: 4 | 6,
    detail: string,
  ) {
    // A NativeError's message already ends with its code.
    super(`link socket ifname=${ifname} family=${family} step=${step}: ${detail.endsWith(`(${code})`) ? detail : `${detail} (${code})`}`);
  }
}
Object.defineProperty(LinkSocketError.prototype, 'name', { value: 'LinkSocketError', configurable: true, writable: true });

const EINVAL = 22;
const ENODEV = 19;
const IFNAMSIZ = 16;
const littleEndian = endianness() === 'LE';

function putInt(b: Uint8Array, offset: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setInt32(offset, v, littleEndian);
}

/** struct ip_mreqn { in_addr imr_multiaddr; in_addr imr_address (any); int imr_ifindex }. */
export function ipMreqn(group: Uint8Array | undefined, ifindex: number): Uint8Array {
  const b = new Uint8Array(12);
  if (group !== undefined) b.set(group.subarray(0, 4), 0);
  putInt(b, 8, ifindex);
  return b;
}

/** struct ipv6_mreq { in6_addr ipv6mr_multiaddr; int ipv6mr_interface }. */
export function ipv6Mreq(group: Uint8Array, ifindex: number): Uint8Array {
  const b = new Uint8Array(20);
  b.set(group.subarray(0, 16), 0);
  putInt(b, 16, ifindex);
  return b;
}

/**
 * SO_BINDTODEVICE's value, or undefined when `ifname` cannot be a device name: the kernel cuts a
 * longer name to IFNAMSIZ-1 bytes without a word and would bind to whatever device has the prefix.
 */
export function deviceNameBytes(ifname: string): Uint8Array | undefined {
  const b = Buffer.from(ifname, 'utf8');
  if (b.length === 0 || b.length >= IFNAMSIZ || ifname.includes('\0') || ifname.includes('/')) return undefined;
  return b;
}

/**
 * A nonblocking, CLOEXEC UDP socket inside the namespace of opts.netnsFd, bound to opts.ifname and
 * the wildcard address on opts.port, every datagram carrying its packet information and TTL / hop
 * limit. SO_REUSEADDR and SO_REUSEPORT: another responder (avahi) may hold the same port in that
 * namespace. Throws LinkSocketError naming the failed step, after closing the socket.
 */
export function openLinkSocket(opts: LinkSocketOptions): number {
  const { family, ifname, ifindex } = opts;
  const fail = (step: LinkSocketStep, code: string, errno: number, detail: string): never => {
    throw new LinkSocketError(step, code, errno, ifname, family, detail);
  };
  const name = deviceNameBytes(ifname);
  if (name === undefined) fail('bindtodevice', 'EINVAL', EINVAL, `not a device name: ${JSON.stringify(ifname)}`);
  let group: Uint8Array | undefined;
  if (opts.group !== undefined) {
    group = parseAddress(family, opts.group);
    if (group === undefined) fail('join', 'EINVAL', EINVAL, `group is not an IPv${family} address: ${JSON.stringify(opts.group)}`);
  }

  const nb = native();
  let fd: number;
  try {
    fd = nb.socketInNetns(opts.netnsFd, family === 4 ? AF_INET : AF_INET6, SOCK_DGRAM, IPPROTO_UDP, true);
  } catch (e) {
    return rethrow(e, 'socket', ifname, family);
  }
  let step: LinkSocketStep = 'socket';
  try {
    step = 'reuseaddr';
    nb.setsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    step = 'reuseport';
    nb.setsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    step = 'bindtodevice';
    nb.setsockoptBytes(fd, SOL_SOCKET, SO_BINDTODEVICE, name!);
    // The name and the index come from separate netlink reads: a rename in between must not
    // leave the socket on another device than the one its group and sends use.
    const bound = nb.getsockoptInt(fd, SOL_SOCKET, SO_BINDTOIFINDEX);
    if (bound !== ifindex) fail('bindtodevice', 'ENODEV', ENODEV, `${ifname} is ifindex ${bound} in the namespace, not ${ifindex}`);
    if (family === 4) {
      // Both on before bind(): no datagram is ever queued without them.
      step = 'pktinfo';
      nb.setsockoptInt(fd, IPPROTO_IP, IP_PKTINFO, 1);
      step = 'hoplimit';
      nb.setsockoptInt(fd, IPPROTO_IP, IP_RECVTTL, 1);
      step = 'multicast-if';
      nb.setsockoptBytes(fd, IPPROTO_IP, IP_MULTICAST_IF, ipMreqn(undefined, ifindex));
      if (opts.multicastHops !== undefined) {
        step = 'multicast-hops';
        nb.setsockoptInt(fd, IPPROTO_IP, IP_MULTICAST_TTL, opts.multicastHops);
      }
      if (opts.multicastLoop !== undefined) {
        step = 'multicast-loop';
        nb.setsockoptInt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, opts.multicastLoop ? 1 : 0);
      }
      if (opts.multicastAll !== undefined) {
        step = 'multicast-all';
        nb.setsockoptInt(fd, IPPROTO_IP, IP_MULTICAST_ALL, opts.multicastAll ? 1 : 0);
      }
    } else {
      step = 'v6only';
      nb.setsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
      step = 'pktinfo';
      nb.setsockoptInt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
      step = 'hoplimit';
      nb.setsockoptInt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1);
      step = 'multicast-if';
      nb.setsockoptInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, ifindex);
      if (opts.multicastHops !== undefined) {
        step = 'multicast-hops';
        nb.setsockoptInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, opts.multicastHops);
      }
      if (opts.multicastLoop !== undefined) {
        step = 'multicast-loop';
        nb.setsockoptInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, opts.multicastLoop ? 1 : 0);
      }
      if (opts.multicastAll !== undefined) {
        step = 'multicast-all';
        nb.setsockoptInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, opts.multicastAll ? 1 : 0);
      }
    }
    if (opts.broadcast === true) {
      step = 'broadcast';
      nb.setsockoptInt(fd, SOL_SOCKET, SO_BROADCAST, 1);
    }
    step = 'bind';
    nb.bindInet(fd, family, family === 4 ? '0.0.0.0' : '::', opts.port);
    if (group !== undefined) {
      step = 'join';
      join(fd, family, group, ifindex);
    }
    return fd;
  } catch (e) {
    nb.close(fd);
    return rethrow(e, step, ifname, family);
  }
}

function join(fd: number, family: 4 | 6, group: Uint8Array, ifindex: number): void {
  const nb = native();
  if (family === 4) nb.setsockoptBytes(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, ipMreqn(group, ifindex));
  else nb.setsockoptBytes(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, ipv6Mreq(group, ifindex));
}

/**
 * Joins `group` on the device of a socket openLinkSocket made (ifindex in the socket's namespace):
 * a socket opened without a group can become its link's listener later. LinkSocketError on failure
 * (the socket stays open and as it was).
 */
export function joinLinkGroup(fd: number, family: 4 | 6, group: string, ifindex: number, ifname: string): void {
  const bytes = parseAddress(family, group);
  if (bytes === undefined) throw new LinkSocketError('join', 'EINVAL', EINVAL, ifname, family, `group is not an IPv${family} address: ${JSON.stringify(group)}`);
  try {
    join(fd, family, bytes, ifindex);
  } catch (e) {
    rethrow(e, 'join', ifname, family);
  }
}

function rethrow(e: unknown, step: LinkSocketStep, ifname: string, family: 4 | 6): never {
  if (e instanceof LinkSocketError) throw e;
  const ne = asNativeError(e);
  if (ne === undefined) throw e;
  throw new LinkSocketError(step, ne.code, ne.errno, ifname, family, ne.message);
}
