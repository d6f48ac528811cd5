/** Numbers from linux/netlink.h (the authority: /usr/include/linux/netlink.h). */

import {
  NETLINK_ADD_MEMBERSHIP, NETLINK_CAP_ACK, NETLINK_DROP_MEMBERSHIP, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK,
  NETLINK_LISTEN_ALL_NSID, NETLINK_NO_ENOBUFS, NETLINK_PKTINFO,
} from '../../native/constants.js';

// The socket-level names are defined once, with the addon's; the codec's users get them here too.
export {
  AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, SOL_NETLINK, SOL_SOCKET, SO_RCVBUF, SO_RCVBUFFORCE,
} from '../../native/constants.js';

/** Socket options at SOL_NETLINK. */
export const NetlinkSockopt = {
  addMembership: NETLINK_ADD_MEMBERSHIP,
  dropMembership: NETLINK_DROP_MEMBERSHIP,
  pktinfo: NETLINK_PKTINFO,
  noEnobufs: NETLINK_NO_ENOBUFS,
  listenAllNsid: NETLINK_LISTEN_ALL_NSID,
  capAck: NETLINK_CAP_ACK,
  extAck: NETLINK_EXT_ACK,
  getStrictChk: NETLINK_GET_STRICT_CHK,
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
