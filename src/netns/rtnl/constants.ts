/** Numbers from linux/rtnetlink.h, if_link.h, if_addr.h, net_namespace.h, if.h (checked against /usr/include/linux). */

export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWNSID: 88,
  DELNSID: 89,
  GETNSID: 90,
} as const;

export const RTM_NAMES: Record<number, string> = Object.fromEntries(Object.entries(RTM).map(([k, v]) => [v, `RTM_${k}`]));

export const AF = { UNSPEC: 0, INET: 2, INET6: 10, PACKET: 17 } as const;

/** enum IFLA_* (attributes of RTM_*LINK). */
export const IFLA = {
  ADDRESS: 1,
  BROADCAST: 2,
  IFNAME: 3,
  MTU: 4,
  LINK: 5,
  QDISC: 6,
  STATS: 7,
  MASTER: 10,
  TXQLEN: 13,
  OPERSTATE: 16,
  LINKMODE: 17,
  LINKINFO: 18,
  NET_NS_PID: 19,
  IFALIAS: 20,
  STATS64: 23,
  AF_SPEC: 26,
  GROUP: 27,
  NET_NS_FD: 28,
  EXT_MASK: 29,
  PROMISCUITY: 30,
  NUM_TX_QUEUES: 31,
  NUM_RX_QUEUES: 32,
  CARRIER: 33,
  LINK_NETNSID: 37,
  NEW_NETNSID: 45,
  TARGET_NETNSID: 46,
  NEW_IFINDEX: 49,
  MIN_MTU: 50,
  MAX_MTU: 51,
  ALT_IFNAME: 53,
  PERM_ADDRESS: 54,
} as const;

export const IFLA_INFO = { KIND: 1, DATA: 2, XSTATS: 3, SLAVE_KIND: 4, SLAVE_DATA: 5 } as const;

export const IFLA_INET6 = { FLAGS: 1, CONF: 2, STATS: 3, MCAST: 4, CACHEINFO: 5, ICMP6STATS: 6, TOKEN: 7, ADDR_GEN_MODE: 8, RA_MTU: 9 } as const;
export const IFLA_INET = { CONF: 1 } as const;

/** RTEXT_FILTER_* for IFLA_EXT_MASK. */
export const RTEXT_FILTER = { VF: 1, BRVLAN: 2, BRVLAN_COMPRESSED: 4, SKIP_STATS: 8 } as const;

/** enum IFA_* (attributes of RTM_*ADDR). */
export const IFA = {
  ADDRESS: 1,
  LOCAL: 2,
  LABEL: 3,
  BROADCAST: 4,
  ANYCAST: 5,
  CACHEINFO: 6,
  MULTICAST: 7,
  FLAGS: 8,
  RT_PRIORITY: 9,
  TARGET_NETNSID: 10,
  PROTO: 11,
} as const;

/** enum rtattr_type_t (attributes of RTM_*ROUTE). */
export const RTA = {
  DST: 1,
  SRC: 2,
  IIF: 3,
  OIF: 4,
  GATEWAY: 5,
  PRIORITY: 6,
  PREFSRC: 7,
  METRICS: 8,
  MULTIPATH: 9,
  FLOW: 11,
  CACHEINFO: 12,
  TABLE: 15,
  MARK: 16,
  VIA: 18,
  PREF: 20,
  ENCAP_TYPE: 21,
  ENCAP: 22,
  UID: 25,
  IP_PROTO: 27,
  NH_ID: 30,
} as const;

/** enum rt_class_t: routing table ids (ids above 255 go in RTA_TABLE, rtm_table is then 0). */
export const RT_TABLE = { UNSPEC: 0, COMPAT: 252, DEFAULT: 253, MAIN: 254, LOCAL: 255 } as const;

/** RTPROT_*: who installed a route (values from RTPROT_STATIC up are not interpreted by the kernel). */
export const RTPROT = { UNSPEC: 0, REDIRECT: 1, KERNEL: 2, BOOT: 3, STATIC: 4, RA: 9, DHCP: 16 } as const;

/** enum rt_scope_t. */
export const RT_SCOPE = { UNIVERSE: 0, SITE: 200, LINK: 253, HOST: 254, NOWHERE: 255 } as const;

/** RTN_* (rtm_type). */
export const RTN = {
  UNSPEC: 0, UNICAST: 1, LOCAL: 2, BROADCAST: 3, ANYCAST: 4, MULTICAST: 5, BLACKHOLE: 6, UNREACHABLE: 7, PROHIBIT: 8, THROW: 9, NAT: 10,
} as const;

/** enum NETNSA_* (attributes of RTM_*NSID). */
export const NETNSA = { NSID: 1, PID: 2, FD: 3, TARGET_NSID: 4, CURRENT_NSID: 5 } as const;
export const NETNSA_NSID_NOT_ASSIGNED = -1;

/** enum rtnetlink_groups (1-based group numbers for NETLINK_ADD_MEMBERSHIP). */
export const RTNLGRP = { LINK: 1, IPV4_IFADDR: 5, IPV6_IFADDR: 9, NSID: 28 } as const;

/** IFF_* (linux/if.h). */
export const IFF = { UP: 0x1, BROADCAST: 0x2, LOOPBACK: 0x8, POINTOPOINT: 0x10, RUNNING: 0x40, NOARP: 0x80, PROMISC: 0x100, ALLMULTI: 0x200, MULTICAST: 0x1000, LOWER_UP: 0x10000 } as const;

/** struct ifinfomsg, struct ifaddrmsg, struct rtmsg, struct rtgenmsg (padded to 4). */
export const IFINFOMSG_LEN = 16;
export const IFADDRMSG_LEN = 8;
export const RTMSG_LEN = 12;
export const RTGENMSG_LEN = 4;
