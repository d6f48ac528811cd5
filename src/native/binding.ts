/**
 * The contract of the native addon (native/ontap_native.cc): the syscalls Node lacks, nothing more.
 * Every function is synchronous unless it takes a callback. Failures throw a NativeError
 * (see errors.ts) carrying errno, its symbolic code and the syscall name.
 * Descriptors created by the addon are always O_CLOEXEC.
 */
export interface RecvResult {
  /** The datagram (or seqpacket record) as received, at most `maxBytes` long. */
  data: Buffer;
  /** Descriptors that arrived with it (SCM_RIGHTS), already O_CLOEXEC (MSG_CMSG_CLOEXEC). */
  fds: number[];
  /** NETLINK_LISTEN_ALL_NSID: the nsid from the NETLINK_LISTEN_ALL_NSID control message, if any. */
  nsid: number | undefined;
  /** Netlink: the sender's port id (0 = the kernel). Unix sockets: undefined. */
  senderPortId: number | undefined;
  /** MSG_TRUNC was set: the record was longer than maxBytes (its full length is in `length`). */
  truncated: boolean;
  /** MSG_CTRUNC was set: descriptors or control data were dropped. */
  controlTruncated: boolean;
  /** The length of the record on the wire (differs from data.length when truncated). */
  length: number;
}

export interface PeerCred { pid: number; uid: number; gid: number }

export interface Poller {
  /** Start (or change) watching: callback(err, readable, writable) on readiness. */
  start(readable: boolean, writable: boolean): void;
  stop(): void;
  /** Stop and release; the fd itself is not closed. */
  close(): void;
}

export interface NativeBinding {
  readonly abiVersion: number;
  /** socket(2); SOCK_CLOEXEC is always added, SOCK_NONBLOCK when `nonblocking`. */
  socket(domain: number, type: number, protocol: number, nonblocking: boolean): number;
  /** bind(2) a netlink socket with the given group bitmask; returns the port id (getsockname). */
  bindNetlink(fd: number, groups: number): number;
  /** bind(2) to a filesystem unix path. */
  bindUnix(fd: number, path: string): void;
  listen(fd: number, backlog: number): void;
  /** accept4(2) with SOCK_CLOEXEC|SOCK_NONBLOCK; returns -1 on EAGAIN. */
  accept(fd: number): number;
  /** connect(2) to a filesystem unix path. */
  connectUnix(fd: number, path: string): void;
  setsockoptInt(fd: number, level: number, name: number, value: number): void;
  getsockoptInt(fd: number, level: number, name: number): number;
  /** SO_RCVTIMEO / SO_SNDTIMEO in milliseconds (0 = none). */
  setTimeouts(fd: number, recvMs: number, sendMs: number): void;
  /** SO_PEERCRED. */
  peerCred(fd: number): PeerCred;
  /** getsockopt(SO_TYPE) / SO_ACCEPTCONN / getsockname path: used to validate systemd's sockets. */
  socketInfo(fd: number): { domain: number; type: number; listening: boolean; path: string | undefined };
  /**
   * sendmsg(2) with optional SCM_RIGHTS; for netlink, `netlinkPortId` addresses the peer (0 = kernel).
   * Returns bytes sent, or -1 on EAGAIN.
   */
  sendmsg(fd: number, data: Uint8Array, fds: number[] | undefined, netlinkPortId: number | undefined): number;
  /** recvmsg(2) with MSG_CMSG_CLOEXEC; null on EAGAIN. `peek` uses MSG_PEEK|MSG_TRUNC to learn the size. */
  recvmsg(fd: number, maxBytes: number, maxFds: number): RecvResult | null;
  /** sendmsg(2) run on the libuv thread pool (for requests that hold rtnl_lock for long). */
  sendmsgAsync(fd: number, data: Uint8Array, netlinkPortId: number, callback: (err: Error | null, sent: number) => void): void;
  close(fd: number): void;
  /** uv_poll_t on fd; the callback runs on the event loop. */
  poll(fd: number, callback: (err: Error | null, readable: boolean, writable: boolean) => void): Poller;
  /** fcntl FD_CLOEXEC on/off. */
  setCloexec(fd: number, on: boolean): void;
  /** unshare(2) for the calling (main) thread. */
  unshare(flags: number): void;
  sethostname(name: string): void;
  /** execve(2); returns only by throwing. */
  execve(path: string, argv: string[], env: string[]): never;
  /**
   * Writes `value` to the file at `path` (e.g. /proc/sys/net/ipv6/conf/X/stable_secret) from a
   * short-lived native thread that first setns(nsFd, CLONE_NEWNET): the event-loop thread never moves.
   */
  writeFileInNetns(nsFd: number, path: string, value: string): void;
  /** ioctl(TUNSETIFF) on an open /dev/tapN (macvtap/ipvtap) with ifr_flags = flags. */
  tapSetIff(fd: number, flags: number): void;
  /** ioctl(TUNGETIFF): current flags. */
  tapGetIff(fd: number): number;
}
