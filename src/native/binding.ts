/**
 * The contract of the native addon (native/, registered in native/module.cc): the syscalls Node lacks, nothing more.
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

/** A UDP datagram from recvInet, with the packet information the kernel attached. */
export interface InetDatagram {
  /** The payload, at most `maxBytes` long. */
  data: Buffer;
  /** MSG_TRUNC: the datagram was longer than maxBytes; the rest is lost. */
  truncated: boolean;
  /** The source address's family (the socket's: IPv6 sockets are expected to be IPV6_V6ONLY). */
  family: 4 | 6;
  /**
   * The source address as inet_ntop prints it (RFC 5952 for IPv6), never with a %scope suffix: a
   * scope id is an ifindex of the socket's namespace, and `ifindex` already says where the
   * datagram came in. On an IPv6 socket without IPV6_V6ONLY an IPv4 sender is reported as it
   * arrives, family 6 and '::ffff:a.b.c.d'.
   */
  source: string;
  sourcePort: number;
  /**
   * The receiving interface from IP_PKTINFO (ipi_ifindex) / IPV6_PKTINFO (ipi6_ifindex), an ifindex
   * of the socket's namespace; 0 unless IP_PKTINFO / IPV6_RECVPKTINFO is on.
   */
  ifindex: number;
  /**
   * The header's destination address (ipi_addr / ipi6_addr: the group for multicast, the
   * broadcast address for broadcast); '' unless IP_PKTINFO / IPV6_RECVPKTINFO is on.
   */
  destination: string;
  /** The received TTL / hop limit (IP_TTL / IPV6_HOPLIMIT control message); -1 unless IP_RECVTTL / IPV6_RECVHOPLIMIT is on. */
  hopLimit: number;
}

export interface PeerCred { pid: number; uid: number; gid: number }

export interface Poller {
  /**
   * Start (or change) watching: callback(err, readable, writable, priority) on readiness. While
   * started, the poller stays alive even if unreferenced (and keeps the event loop alive, like a
   * socket). `priority` watches POLLPRI; on a file that is not a socket, the POLLERR|POLLPRI a
   * /proc/sys file signals a change with is reported as `priority`, and the watch goes on.
   */
  start(readable: boolean, writable: boolean, priority?: boolean): void;
  stop(): void;
  /** Stop and release; the fd itself is not closed. Close the poller before closing the fd. */
  close(): void;
}

/** What the background closer (closeInBackground) is doing, for logs and tests. */
export interface CloserStats {
  /** Threads alive now (each serves one lane). */
  threads: number;
  /** Descriptors queued, not yet being closed. */
  waiting: number;
  /** Descriptors being closed now. */
  running: number;
  /** Descriptors closed since the start. */
  closed: number;
  /** Closes that took the interrupt interval or longer (so were interrupted at least once). */
  interrupted: number;
  /** Whether long closes are interrupted at all (false when the closer's signal was taken). */
  interrupts: boolean;
}

export interface NativeBinding {
  readonly abiVersion: number;
  /** socket(2); SOCK_CLOEXEC is always added, SOCK_NONBLOCK when `nonblocking`. */
  socket(domain: number, type: number, protocol: number, nonblocking: boolean): number;
  /** socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0); add SOCK_NONBLOCK to `type` for nonblocking ends. */
  socketpair(type: number): [number, number];
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
  /** SO_RCVTIMEO / SO_SNDTIMEO in milliseconds (0 = none). A timeout is EAGAIN: recvmsg null, sendmsg -1. */
  setTimeouts(fd: number, recvMs: number, sendMs: number): void;
  /** SO_PEERCRED. */
  peerCred(fd: number): PeerCred;
  /** getsockopt(SO_TYPE) / SO_ACCEPTCONN / getsockname path: used to validate systemd's sockets. */
  socketInfo(fd: number): { domain: number; type: number; listening: boolean; path: string | undefined };
  /**
   * ioctl(SIOCGSKNS): a new descriptor (O_CLOEXEC) of the network namespace `fd` belongs to. For an
   * accepted unix connection that is the namespace the peer created its socket in. EPERM without
   * CAP_NET_ADMIN over that namespace's owner. Syscall 'ioctl'.
   */
  socketNetns(fd: number): number;
  /**
   * sendmsg(2) with optional SCM_RIGHTS; for netlink, `netlinkPortId` addresses the peer (0 = kernel).
   * When `netlinkPortId` is undefined the message is unaddressed (unix sockets must pass undefined; a
   * netlink socket then sends to its connected peer, by default the kernel). Always MSG_NOSIGNAL.
   * Returns bytes sent, or -1 on EAGAIN.
   */
  sendmsg(fd: number, data: Uint8Array, fds: number[] | undefined, netlinkPortId: number | undefined): number;
  /**
   * recvmsg(2) with MSG_CMSG_CLOEXEC|MSG_TRUNC; null on EAGAIN. Descriptors beyond `maxFds` (at most
   * 253) are closed and reported as controlTruncated. `peek` adds MSG_PEEK: with maxBytes 0 it
   * learns the next record's size (`length`) without consuming it.
   */
  recvmsg(fd: number, maxBytes: number, maxFds: number, peek?: boolean): RecvResult | null;
  /**
   * sendmsg(2) run on the libuv thread pool (for requests that hold rtnl_lock for long). The data is
   * copied first. `netlinkPortId` as in sendmsg. callback(null, -1) on EAGAIN, like sendmsg.
   */
  sendmsgAsync(
    fd: number,
    data: Uint8Array,
    netlinkPortId: number | undefined,
    callback: (err: Error | null, sent: number) => void,
  ): void;
  /**
   * bind(2) of an AF_INET/AF_INET6 socket to `address` (text, as inet_pton reads it: '0.0.0.0' or
   * '::' for any; no %scope) and `port`. A bad address text is EINVAL with syscall 'bindInet'.
   */
  bindInet(fd: number, family: 4 | 6, address: string, port: number): void;
  /** setsockopt(2) with a value of raw bytes: struct ip_mreqn, struct ipv6_mreq, SO_BINDTODEVICE's name, ... */
  setsockoptBytes(fd: number, level: number, name: number, value: Uint8Array): void;
  /**
   * recvmsg(2) of one UDP datagram (maxBytes at most 65535) with MSG_TRUNC; null on EAGAIN. Reads the
   * IP_PKTINFO / IPV6_PKTINFO and IP_TTL / IPV6_HOPLIMIT control messages (see InetDatagram); any
   * other control message is ignored.
   */
  recvInet(fd: number, maxBytes: number): InetDatagram | null;
  /**
   * sendmsg(2) of one datagram to address:port with MSG_NOSIGNAL; bytes sent, or -1 on EAGAIN.
   * `ifindex` (0 = none) is the outgoing interface: for IPv6 the sin6_scope_id (which ff02::/16 and
   * fe80::/10 destinations need unless the socket is bound to a device), for IPv4 an IP_PKTINFO
   * control message (ipi_ifindex). Beware: for both the kernel lets it override SO_BINDTODEVICE, so
   * on a device-bound socket pass 0 or that device's ifindex. A bad address text is EINVAL with
   * syscall 'sendInet'.
   */
  sendInet(fd: number, data: Uint8Array, family: 4 | 6, address: string, port: number, ifindex: number): number;
  close(fd: number): void;
  /**
   * uv_poll_t on fd; the callback runs on the event loop. libuv sets O_NONBLOCK on fd. At most one
   * poller per fd. On an error the poller is stopped and `err` is set: POLLERR on a socket reports
   * the socket's pending error (SO_ERROR, e.g. ENOBUFS after a netlink overrun, which it consumes),
   * anything else libuv's EBADF. Syscall 'poll'.
   */
  poll(fd: number, callback: (err: Error | null, readable: boolean, writable: boolean, priority?: boolean) => void): Poller;
  /**
   * The host name (uname's nodename, raw bytes, at most 64) of each UTS namespace descriptor, read
   * on a short-lived thread that joins each in turn; an errno number where setns or uname failed
   * (EINVAL: not a UTS namespace). Needs CAP_SYS_ADMIN over the namespaces' owners.
   */
  utsHostnames(fds: number[]): Array<Buffer | number>;
  /** fcntl FD_CLOEXEC on/off. */
  setCloexec(fd: number, on: boolean): void;
  /**
   * unshare(2) for the calling (main) thread only: Node's other threads keep their namespaces.
   * CLONE_NEWUSER fails with EINVAL (the process is multithreaded); CLONE_NEWNS works (the kernel
   * gives the thread its own fs_struct).
   */
  unshare(flags: number): void;
  sethostname(name: string): void;
  /**
   * execve(2); returns only by throwing. First resets ignored signals to SIG_DFL, empties the
   * thread's signal mask and clears FD_CLOEXEC and O_NONBLOCK on fds 0-2 (all restored if execve
   * fails): Node ignores SIGPIPE, marks its stdio close-on-exec at startup
   * (uv_disable_stdio_inheritance) and makes stdio pipes nonblocking, none of which the new
   * program should inherit. Any other descriptor survives only if it is not CLOEXEC.
   */
  execve(path: string, argv: string[], env: string[]): never;
  /**
   * Writes `value` to the file at `path` (e.g. /proc/sys/net/ipv6/conf/X/stable_secret) from a
   * short-lived native thread that first setns(nsFd, CLONE_NEWNET): the event-loop thread never moves.
   * /proc/sys/net/... and /proc/thread-self/net/... resolve in the thread's namespace; /proc/self/net,
   * /proc/net (both the thread-group leader's, i.e. the main thread's) and /sys/class/net (the
   * namespace sysfs was mounted in) do NOT. Errors carry syscall 'setns', 'open' or 'write'.
   */
  writeFileInNetns(nsFd: number, path: string, value: string): void;
  /**
   * ioctl(TUNSETIFF) on an open /dev/tapN (macvtap/ipvtap) with ifr_flags = flags. macvtap accepts only
   * IFF_TAP|IFF_NO_PI plus feature bits (IFF_VNET_HDR, ...), else EINVAL. Beware: N is the ifindex,
   * unique only per namespace; devtmpfs keeps the first tapN, so open by the device number in
   * /sys/class/net/IF/macvtap/tapN/dev (read inside IF's namespace) when namespaces are involved.
   */
  tapSetIff(fd: number, flags: number): void;
  /** ioctl(TUNGETIFF): current flags. */
  tapGetIff(fd: number): number;
  /**
   * socket(2) created inside the network namespace of nsFd, by a short-lived native thread that
   * setns()es first (a socket belongs to its creator's namespace). CLOEXEC always.
   */
  socketInNetns(nsFd: number, domain: number, type: number, protocol: number, nonblocking: boolean): number;
  /**
   * ioctl(NS_GET_USERNS) on a namespace descriptor: a new descriptor (CLOEXEC) of the user
   * namespace that owns it. EPERM when that one is outside the caller's user namespace.
   */
  nsOwnerUserns(nsFd: number): number;
  /** Sets IFF_UP on an interface of the calling thread's namespace (ioctl); false if it already was up. */
  interfaceUp(name: string): boolean;
  /**
   * Closes `fds` on threads of the addon's own (never libuv's pool): for descriptors whose last
   * close may block (a socket with SO_LINGER, a unix socket with descriptors queued in it). One
   * lane per `lane` (a uid; -1 ontapd's own; -2 an unknown peer): at most 2 of its closes run at
   * once, so one lane's slow closes never hold up another's. A close still running after 100 ms is
   * interrupted by a signal, again every 100 ms (interruptible waits, such as tcp_close()'s linger,
   * end). Returns at once; the descriptors are no longer the caller's. Exit never waits for it.
   */
  closeInBackground(lane: number, fds: number[]): void;
  /** Descriptors of `lane` queued or being closed by closeInBackground. */
  backgroundCloses(lane: number): number;
  closerStats(): CloserStats;
  /**
   * shutdown(SHUT_RD) of a connected unix socket (its peer's sends fail with EPIPE from now on),
   * then close(2) at once if no record in its receive queue carries descriptors (scm_fds in
   * /proc/self/fdinfo). Otherwise it returns false and leaves fd open: its last close would drop
   * those descriptors in the closing thread, so close it with closeInBackground.
   */
  closeIfNothingInFlight(fd: number): boolean;
  /** mknod(2) of a character device node (S_IFCHR | mode). */
  mknodChar(path: string, mode: number, major: number, minor: number): void;
}

/** The raw module: NativeBinding plus the hook index.ts uses once at load. */
export interface NativeAddon extends NativeBinding {
  /** Errors are then created as `new ctor(message, errno, code, syscall)`. */
  setErrorConstructor(ctor: new (message: string, errno: number, code: string, syscall: string) => Error): void;
}
