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
