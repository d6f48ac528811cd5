/**
 * Linux ABI numbers the addon's callers pass through (x86_64/arm64 values; all generic): the one
 * home of the syscall-level names. Everything else imports them from here (the netlink codec
 * re-exports the socket ones it needs); this module imports nothing, so the client can use it.
 */
export const AF_UNIX = 1;
export const AF_NETLINK = 16;

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

export const SOL_SOCKET = 1;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_PASSCRED = 16;
export const SO_RCVBUFFORCE = 33;

export const NETLINK_ROUTE = 0;
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
