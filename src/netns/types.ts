/**
 * The typed model of rtnetlink objects that services see. The codec (src/netns/netlink/, src/netns/rtnl/)
 * turns these into bytes and back; nothing above src/netns handles raw netlink bytes.
 */

export type IpvlanMode = 'l2' | 'l3' | 'l3s';
export type IpvlanFlag = 'bridge' | 'private' | 'vepa';
export type MacvlanMode = 'private' | 'vepa' | 'bridge' | 'passthru' | 'source';

/** IN6_ADDR_GEN_MODE_* (linux/if_link.h). */
export const AddrGenMode = { eui64: 0, none: 1, stablePrivacy: 2, random: 3 } as const;
export type AddrGenModeValue = (typeof AddrGenMode)[keyof typeof AddrGenMode];

/** Kind-specific data (IFLA_INFO_DATA), one variant per kind with a registered codec. */
export type LinkKindData =
  | { kind: 'ipvlan' | 'ipvtap'; mode: IpvlanMode; flag: IpvlanFlag }
  | { kind: 'macvlan' | 'macvtap'; mode: MacvlanMode }
  | { kind: 'veth'; peerName?: string };

/** A link as reported by the kernel (RTM_NEWLINK in a reply, a dump or an event). */
export interface Link {
  /** The nsid this link was reported under: IFLA_TARGET_NETNSID echo or the event's control message. */
  nsid: number | undefined;
  ifindex: number;
  ifname: string;
  /** ifi_flags (IFF_UP, IFF_ALLMULTI, ...). */
  flags: number;
  mtu: number | undefined;
  /** Lower-case colon-separated hardware address, if any. */
  address: string | undefined;
  alias: string | undefined;
  group: number | undefined;
  /** IFLA_LINK: the parent's ifindex (in linkNetnsid's namespace when that is set). */
  parentIfindex: number | undefined;
  /**
   * IFLA_LINK_NETNSID: the parent's namespace, absent when it is the link's own. In a reply or dump
   * it is the id the requesting socket's namespace has for it (even for a link in a target
   * namespace); in an event, the id the link's own namespace has for it (seen on 6.18).
   */
  linkNetnsid: number | undefined;
  /** IFLA_INFO_KIND, if any. */
  kind: string | undefined;
  /** IFLA_INFO_DATA decoded for kinds with a registered codec. */
  data: LinkKindData | undefined;
  numTxQueues: number | undefined;
  numRxQueues: number | undefined;
  /** IFLA_AF_SPEC / AF_INET6 / IFLA_INET6_ADDR_GEN_MODE, if reported. */
  addrGenMode: number | undefined;
  /**
   * Only in the RTM_DELLINK event of a link moved to another namespace (set only when present):
   * IFLA_NEW_NETNSID, that namespace's id in the frame of the link's old namespace (the event's),
   * and IFLA_NEW_IFINDEX, the link's ifindex there.
   */
  newNetnsid?: number;
  newIfindex?: number;
}

/** Selects one link: by index or by name, in our namespace or in the one with targetNsid. */
export interface LinkSelector {
  ifindex?: number;
  ifname?: string;
  targetNsid?: number;
  /**
   * Alternative to targetNsid: the request runs over a short-lived socket opened inside this
   * namespace (needs the addon's socketInNetns). Links then come back with nsid undefined.
   */
  netnsFd?: number;
}

export interface LinkCreate {
  ifname: string;
  /** Kind and its IFLA_INFO_DATA; veth takes its peer name. */
  data: LinkKindData;
  /** IFLA_LINK: the uplink's ifindex in the socket's own namespace. */
  parentIfindex?: number;
  /**
   * IFLA_LINK_NETNSID: the parent is not in the socket's namespace but in the one with this nsid,
   * as seen FROM THE NAMESPACE THE LINK IS CREATED IN (netnsFd's, if given): that is where the
   * kernel resolves it. parentIfindex is then that namespace's ifindex.
   */
  linkNetnsid?: number;
  /** IFLA_NET_NS_FD: create the link directly in this namespace. */
  netnsFd?: number;
  up?: boolean;
  allmulti?: boolean;
  group?: number;
  alias?: string;
  mtu?: number;
  /** IFLA_ADDRESS: a fixed hardware address (colon-separated hex). */
  address?: string;
  /** IFLA_NUM_TX_QUEUES and IFLA_NUM_RX_QUEUES. */
  numQueues?: number;
  addrGenMode?: AddrGenModeValue;
}

export interface LinkChange {
  up?: boolean;
  /** IFLA_ADDRESS: the hardware address (colon-separated hex). */
  address?: string;
  allmulti?: boolean;
  group?: number;
  alias?: string;
  ifname?: string;
  addrGenMode?: AddrGenModeValue;
}

/** IFA_F_* flags of interest (linux/if_addr.h). */
export const AddressFlag = {
  secondary: 0x01, nodad: 0x02, optimistic: 0x04, dadfailed: 0x08, homeaddress: 0x10,
  deprecated: 0x20, tentative: 0x40, permanent: 0x80, managetempaddr: 0x100,
  noprefixroute: 0x200, mcautojoin: 0x400, stablePrivacy: 0x800,
} as const;

export interface Address {
  nsid: number | undefined;
  family: 4 | 6;
  ifindex: number;
  /** Textual address (inet_ntop form). */
  address: string;
  prefixLength: number;
  /** ifa_scope (0 universe, 253 link, 254 host). */
  scope: number;
  /** IFA_FLAGS (32 bit) when present, else ifa_flags. */
  flags: number;
  /** IFA_CACHEINFO valid/preferred lifetimes in seconds (0xffffffff = forever). */
  validLifetime: number | undefined;
  preferredLifetime: number | undefined;
}

/** An IFA_CACHEINFO lifetime that never ends (INFINITY_LIFE_TIME). */
export const LIFETIME_FOREVER = 0xffffffff;

/**
 * An IPv4 address to add (RTM_NEWADDR), as a DHCP client sets a lease: the lifetimes are what
 * remains of it, in seconds (LIFETIME_FOREVER: no end). The kernel deprecates the address when the
 * preferred lifetime ends and removes it, with its prefix route, when the valid lifetime ends.
 */
export interface AddressCreate {
  ifindex: number;
  family: 4;
  address: string;
  prefixLength: number;
  /** IFA_BROADCAST; none when undefined (as `ip addr add` without brd). */
  broadcast?: string;
  /** At least 1, at most LIFETIME_FOREVER. */
  validSeconds: number;
  /** At most validSeconds; 0 makes the address deprecated at once. */
  preferredSeconds: number;
}

/** One address to delete (RTM_DELADDR): an AddressCreate selects the address it made. */
export interface AddressSelector {
  ifindex: number;
  family: 4;
  address: string;
  prefixLength: number;
}

/** RTPROT_* (linux/rtnetlink.h): who installed a route. */
export const RouteProtocol = { unspec: 0, redirect: 1, kernel: 2, boot: 3, static: 4, ra: 9, dhcp: 16 } as const;
/** enum rt_scope_t. */
export const RouteScope = { universe: 0, site: 200, link: 253, host: 254, nowhere: 255 } as const;
/** enum rt_class_t: well-known table ids. */
export const RouteTable = { unspec: 0, default: 253, main: 254, local: 255 } as const;
/** RTN_* (rtm_type). */
export const RouteType = {
  unspec: 0, unicast: 1, local: 2, broadcast: 3, anycast: 4, multicast: 5, blackhole: 6, unreachable: 7, prohibit: 8, throw: 9, nat: 10,
} as const;

/** A route as reported by the kernel (RTM_NEWROUTE in a dump). */
export interface Route {
  family: 4 | 6;
  /** RTA_DST: the destination network; undefined for a default route (dstLength 0). */
  dst: string | undefined;
  /** rtm_dst_len. */
  dstLength: number;
  /** RTA_GATEWAY; undefined for a route on the link, and for multipath routes (RTA_MULTIPATH). */
  gateway: string | undefined;
  /** RTA_OIF: the output device's ifindex; undefined for multipath routes. */
  oif: number | undefined;
  /** RTA_TABLE when present, else rtm_table. */
  table: number;
  /** rtm_protocol (RouteProtocol). */
  protocol: number;
  /** rtm_scope (RouteScope). */
  scope: number;
  /** rtm_type (RouteType). */
  type: number;
  /** RTA_PRIORITY (the metric); 0 when absent, as the kernel means it. */
  priority: number;
  /** RTA_PREFSRC, if any. */
  prefsrc: string | undefined;
}

/**
 * A unicast IPv4 route to add (RTM_NEWROUTE with NLM_F_CREATE|NLM_F_EXCL): without dst, the
 * default route. The kernel refuses (EEXIST) a route whose destination, table and metric an
 * existing one has, whatever its gateway: one default route per metric and table.
 */
export interface RouteCreate {
  family: 4;
  /** The destination network (host bits zero); undefined with dstLength 0 or undefined: default. */
  dst?: string;
  dstLength?: number;
  gateway?: string;
  /** RTA_OIF: the output device. */
  oif: number;
  /** Default RouteTable.main. */
  table?: number;
  /** rtm_protocol: RouteProtocol.dhcp for routes from a lease. */
  protocol: number;
  /** Default universe with a gateway, link without (as iproute2). */
  scope?: number;
  /** RTA_PRIORITY (metric), default 0. */
  priority?: number;
  /** RTA_PREFSRC. */
  prefsrc?: string;
}

/**
 * The route(s) to delete (RTM_DELROUTE): destination and table must match; protocol, gateway, oif
 * and priority match when given (so a DHCP client deletes only its own route); scope and type match
 * anything. A RouteCreate selects the route it made.
 */
export interface RouteSelector {
  family: 4;
  dst?: string;
  dstLength?: number;
  gateway?: string;
  oif?: number;
  /** Default RouteTable.main. */
  table?: number;
  protocol?: number;
  priority?: number;
}
