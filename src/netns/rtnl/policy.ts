import { Policy } from '../netlink/policy.js';
import { AF, IFA, IFLA, IFLA_INET, IFLA_INET6, IFLA_INFO, NETNSA, RTA } from './constants.js';

/**
 * The attribute tables of the rtnetlink messages ontap sends and reads. Types follow the kernel's
 * policies (net/core/rtnetlink.c ifla_policy, net/ipv4/devinet.c ifa_ipv4_policy,
 * net/core/net_namespace.c rtnl_net_policy, net/ipv4/fib_frontend.c rtm_ipv4_policy). Attributes not
 * listed decode as binary.
 */

export const inetPolicy = new Policy('IFLA_INET', {
  [IFLA_INET.CONF]: ['IFLA_INET_CONF', 'binary'],
});

export const inet6Policy = new Policy('IFLA_INET6', {
  [IFLA_INET6.FLAGS]: ['IFLA_INET6_FLAGS', 'u32'],
  [IFLA_INET6.CONF]: ['IFLA_INET6_CONF', 'binary'],
  [IFLA_INET6.STATS]: ['IFLA_INET6_STATS', 'binary'],
  [IFLA_INET6.CACHEINFO]: ['IFLA_INET6_CACHEINFO', 'binary'],
  [IFLA_INET6.ICMP6STATS]: ['IFLA_INET6_ICMP6STATS', 'binary'],
  [IFLA_INET6.TOKEN]: ['IFLA_INET6_TOKEN', 'binary'],
  [IFLA_INET6.ADDR_GEN_MODE]: ['IFLA_INET6_ADDR_GEN_MODE', 'u8'],
  [IFLA_INET6.RA_MTU]: ['IFLA_INET6_RA_MTU', 'u32'],
});

/** IFLA_AF_SPEC: one nest per address family. */
export const afSpecPolicy = new Policy('IFLA_AF_SPEC', {
  [AF.INET]: ['AF_INET', 'nested', inetPolicy],
  [AF.INET6]: ['AF_INET6', 'nested', inet6Policy],
});

/**
 * IFLA_LINKINFO. IFLA_INFO_DATA has no fixed policy: the kind's codec decodes it. iproute2 sends
 * IFLA_INFO_KIND without a terminator (the kernel answers with one).
 */
export const linkInfoPolicy = new Policy('IFLA_INFO', {
  [IFLA_INFO.KIND]: ['IFLA_INFO_KIND', 'string'],
  [IFLA_INFO.DATA]: ['IFLA_INFO_DATA', 'nested'],
  [IFLA_INFO.XSTATS]: ['IFLA_INFO_XSTATS', 'binary'],
  [IFLA_INFO.SLAVE_KIND]: ['IFLA_INFO_SLAVE_KIND', 'cstring'],
  [IFLA_INFO.SLAVE_DATA]: ['IFLA_INFO_SLAVE_DATA', 'nested'],
});

export const linkPolicy = new Policy('IFLA', {
  [IFLA.ADDRESS]: ['IFLA_ADDRESS', 'binary'],
  [IFLA.BROADCAST]: ['IFLA_BROADCAST', 'binary'],
  [IFLA.IFNAME]: ['IFLA_IFNAME', 'cstring'],
  [IFLA.MTU]: ['IFLA_MTU', 'u32'],
  [IFLA.LINK]: ['IFLA_LINK', 'u32'],
  [IFLA.QDISC]: ['IFLA_QDISC', 'cstring'],
  [IFLA.STATS]: ['IFLA_STATS', 'binary'],
  [IFLA.MASTER]: ['IFLA_MASTER', 'u32'],
  [IFLA.TXQLEN]: ['IFLA_TXQLEN', 'u32'],
  [IFLA.OPERSTATE]: ['IFLA_OPERSTATE', 'u8'],
  [IFLA.LINKMODE]: ['IFLA_LINKMODE', 'u8'],
  [IFLA.LINKINFO]: ['IFLA_LINKINFO', 'nested', linkInfoPolicy],
  [IFLA.NET_NS_PID]: ['IFLA_NET_NS_PID', 'u32'],
  // iproute2 sends the alias without a terminator; the kernel answers with one.
  [IFLA.IFALIAS]: ['IFLA_IFALIAS', 'string'],
  [IFLA.STATS64]: ['IFLA_STATS64', 'binary'],
  [IFLA.AF_SPEC]: ['IFLA_AF_SPEC', 'nested', afSpecPolicy],
  [IFLA.GROUP]: ['IFLA_GROUP', 'u32'],
  [IFLA.NET_NS_FD]: ['IFLA_NET_NS_FD', 'u32'],
  [IFLA.EXT_MASK]: ['IFLA_EXT_MASK', 'u32'],
  [IFLA.PROMISCUITY]: ['IFLA_PROMISCUITY', 'u32'],
  [IFLA.NUM_TX_QUEUES]: ['IFLA_NUM_TX_QUEUES', 'u32'],
  [IFLA.NUM_RX_QUEUES]: ['IFLA_NUM_RX_QUEUES', 'u32'],
  [IFLA.CARRIER]: ['IFLA_CARRIER', 'u8'],
  [IFLA.LINK_NETNSID]: ['IFLA_LINK_NETNSID', 's32'],
  [IFLA.NEW_NETNSID]: ['IFLA_NEW_NETNSID', 's32'],
  [IFLA.TARGET_NETNSID]: ['IFLA_TARGET_NETNSID', 's32'],
  [IFLA.NEW_IFINDEX]: ['IFLA_NEW_IFINDEX', 's32'],
  [IFLA.MIN_MTU]: ['IFLA_MIN_MTU', 'u32'],
  [IFLA.MAX_MTU]: ['IFLA_MAX_MTU', 'u32'],
  [IFLA.ALT_IFNAME]: ['IFLA_ALT_IFNAME', 'cstring'],
  [IFLA.PERM_ADDRESS]: ['IFLA_PERM_ADDRESS', 'binary'],
});

export const addrPolicy = new Policy('IFA', {
  [IFA.ADDRESS]: ['IFA_ADDRESS', 'binary'],
  [IFA.LOCAL]: ['IFA_LOCAL', 'binary'],
  [IFA.LABEL]: ['IFA_LABEL', 'cstring'],
  [IFA.BROADCAST]: ['IFA_BROADCAST', 'binary'],
  [IFA.ANYCAST]: ['IFA_ANYCAST', 'binary'],
  [IFA.CACHEINFO]: ['IFA_CACHEINFO', 'binary'],
  [IFA.MULTICAST]: ['IFA_MULTICAST', 'binary'],
  [IFA.FLAGS]: ['IFA_FLAGS', 'u32'],
  [IFA.RT_PRIORITY]: ['IFA_RT_PRIORITY', 'u32'],
  [IFA.TARGET_NETNSID]: ['IFA_TARGET_NETNSID', 's32'],
  [IFA.PROTO]: ['IFA_PROTO', 'u8'],
});

/**
 * RTA_*. Addresses (RTA_DST, RTA_SRC, RTA_GATEWAY, RTA_PREFSRC) are binary: 4 bytes for IPv4 (the
 * kernel's NLA_U32 is an address in network byte order), 16 for IPv6. RTA_METRICS and RTA_ENCAP
 * are kept as bytes (no policy for their children here); RTA_SPORT/RTA_DPORT (big-endian) are not
 * listed, so they stay bytes too.
 */
export const routePolicy = new Policy('RTA', {
  [RTA.DST]: ['RTA_DST', 'binary'],
  [RTA.SRC]: ['RTA_SRC', 'binary'],
  [RTA.IIF]: ['RTA_IIF', 'u32'],
  [RTA.OIF]: ['RTA_OIF', 'u32'],
  [RTA.GATEWAY]: ['RTA_GATEWAY', 'binary'],
  [RTA.PRIORITY]: ['RTA_PRIORITY', 'u32'],
  [RTA.PREFSRC]: ['RTA_PREFSRC', 'binary'],
  [RTA.METRICS]: ['RTA_METRICS', 'nested'],
  [RTA.MULTIPATH]: ['RTA_MULTIPATH', 'binary'],
  [RTA.FLOW]: ['RTA_FLOW', 'u32'],
  [RTA.CACHEINFO]: ['RTA_CACHEINFO', 'binary'],
  [RTA.TABLE]: ['RTA_TABLE', 'u32'],
  [RTA.MARK]: ['RTA_MARK', 'u32'],
  [RTA.VIA]: ['RTA_VIA', 'binary'],
  [RTA.PREF]: ['RTA_PREF', 'u8'],
  [RTA.ENCAP_TYPE]: ['RTA_ENCAP_TYPE', 'u16'],
  [RTA.ENCAP]: ['RTA_ENCAP', 'nested'],
  [RTA.UID]: ['RTA_UID', 'u32'],
  [RTA.IP_PROTO]: ['RTA_IP_PROTO', 'u8'],
  [RTA.NH_ID]: ['RTA_NH_ID', 'u32'],
});

export const nsidPolicy = new Policy('NETNSA', {
  [NETNSA.NSID]: ['NETNSA_NSID', 's32'],
  [NETNSA.PID]: ['NETNSA_PID', 'u32'],
  [NETNSA.FD]: ['NETNSA_FD', 'u32'],
  [NETNSA.TARGET_NSID]: ['NETNSA_TARGET_NSID', 's32'],
  [NETNSA.CURRENT_NSID]: ['NETNSA_CURRENT_NSID', 's32'],
});
