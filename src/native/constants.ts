/**
 * Linux ABI numbers the addon's callers pass through (x86_64/arm64 values; all generic): the one
 * home of the syscall-level names. Everything else imports them from here (the netlink codec
 * re-exports the socket ones it needs); this module imports nothing, so the client can use it.
 */
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_BROADCAST = 6;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_REUSEPORT = 15;
export const SO_PASSCRED = 16;
export const SO_BINDTODEVICE = 25;
export const SO_RCVBUFFORCE = 33;
/** Linux 5.0; getsockopt reads the bound device's ifindex (0 = none) whichever way it was set. */
export const SO_BINDTOIFINDEX = 62;

/** netinet/in.h: protocol levels and the IPv4/IPv6 options of UDP sockets. */
export const IPPROTO_IP = 0;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;

export const IP_TTL = 2;
export const IP_PKTINFO = 8;
export const IP_RECVTTL = 12;
/** Value: struct ip_mreqn (12 bytes) or an in_addr; see src/netns/link-udp.ts. */
export const IP_MULTICAST_IF = 32;
export const IP_MULTICAST_TTL = 33;
export const IP_MULTICAST_LOOP = 34;
/** Value: struct ip_mreqn { imr_multiaddr, imr_address, int imr_ifindex } (12 bytes). */
export const IP_ADD_MEMBERSHIP = 35;
export const IP_DROP_MEMBERSHIP = 36;
/** Off: a socket gets multicast only for the groups it joined itself (on by default: every group its namespace joined). */
export const IP_MULTICAST_ALL = 49;

export const IPV6_UNICAST_HOPS = 16;
/** Value: an int ifindex. */
export const IPV6_MULTICAST_IF = 17;
export const IPV6_MULTICAST_HOPS = 18;
export const IPV6_MULTICAST_LOOP = 19;
/** Value: struct ipv6_mreq { in6_addr ipv6mr_multiaddr, int ipv6mr_interface } (20 bytes). */
export const IPV6_JOIN_GROUP = 20;
export const IPV6_LEAVE_GROUP = 21;
export const IPV6_V6ONLY = 26;
/** As IP_MULTICAST_ALL, for IPv6 (Linux 4.20). */
export const IPV6_MULTICAST_ALL = 29;
export const IPV6_RECVPKTINFO = 49;
export const IPV6_PKTINFO = 50;
export const IPV6_RECVHOPLIMIT = 51;
export const IPV6_HOPLIMIT = 52;

export const NETLINK_ROUTE = 0;
/** The kernel connector (linux/connector.h): process events are its CN_IDX_PROC group. */
export const NETLINK_CONNECTOR = 11;
export const SOL_NETLINK = 270;
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_DROP_MEMBERSHIP = 2;
export const NETLINK_PKTINFO = 3;
export const NETLINK_NO_ENOBUFS = 5;
export const NETLINK_LISTEN_ALL_NSID = 8;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;

export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWNET = 0x40000000;

/** linux/if_tun.h ifr_flags. */
export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_NO_PI = 0x1000;
export const IFF_ONE_QUEUE = 0x2000;
export const IFF_VNET_HDR = 0x4000;
export const IFF_MULTI_QUEUE = 0x0100;
