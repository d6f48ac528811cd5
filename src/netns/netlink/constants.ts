/** Numbers from linux/netlink.h (the authority: /usr/include/linux/netlink.h). */

export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const NETLINK_ROUTE = 0;
export const SOL_NETLINK = 270;
export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
export const SO_RCVBUFFORCE = 33;

/** Socket options at SOL_NETLINK. */
export const NetlinkSockopt = {
  addMembership: 1,
  dropMembership: 2,
  pktinfo: 3,
  noEnobufs: 5,
  listenAllNsid: 8,
  capAck: 10,
  extAck: 11,
  getStrictChk: 12,
} as const;

/** Control message types (nlmsg_type < NLMSG_MIN_TYPE). */
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
export const NLMSG_MIN_TYPE = 0x10;

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

/** enum nlmsgerr_attrs. */
export const NLMSGERR_ATTR = {
  msg: 1,
  offs: 2,
  cookie: 3,
  policy: 4,
  missType: 5,
  missNest: 6,
} as const;

/** 4-byte alignment of messages and attributes (NLMSG_ALIGN / NLA_ALIGN). */
export function align4(n: number): number {
  return (n + 3) & ~3;
}
