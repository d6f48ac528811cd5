import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { native, type NativeBinding, type Poller } from '../native/index.js';
import { ReplyCollector, type ReplyMode } from './netlink/collector.js';
import { AF_NETLINK, NETLINK_ROUTE, NetlinkSockopt, SOCK_RAW, SOL_NETLINK } from './netlink/constants.js';
import {
  CrossNamespaceError,
  DumpInterruptedError,
  errnoNumber,
  NetlinkDecodeError,
  NetlinkError,
  TargetNsidUnsupportedError,
} from './netlink/errors.js';
import { decodeHeader, encodeMessage, type NetlinkMessage, type NetlinkRequest } from './netlink/message.js';
import { decodeAddress, delAddressRequest, dumpAddressesRequest, familyNumber, newAddressRequest } from './rtnl/address.js';
import { RT_TABLE, RTM } from './rtnl/constants.js';
import {
  createLinkSteps,
  decodeLink,
  delGroupRequest,
  delLinkRequest,
  dumpLinksRequest,
  getLinkRequest,
  newLinkRequest,
  setLinkRequest,
} from './rtnl/link.js';
import { decodeNsid, dumpNsidsRequest, getNsidRequest, newNsidRequest } from './rtnl/nsid.js';
import { decodeRoute, delRouteRequest, dumpRoutesRequest, newRouteRequest, type RouteDumpOptions } from './rtnl/route.js';
import type {
  Address,
  AddressCreate,
  AddressSelector,
  Link,
  LinkChange,
  LinkCreate,
  LinkSelector,
  Route,
  RouteCreate,
  RouteSelector,
} from './types.js';

export type { RouteDumpOptions } from './rtnl/route.js';

/** Big enough for any rtnetlink datagram: the kernel sizes dump batches to at most 32 KiB. */
const RECV_BYTES = 65536;
/** Dumps that end with NLM_F_DUMP_INTR are retried this many times (CNI's netlinksafe does 5). */
export const DUMP_RETRIES = 5;
const DEFAULT_TIMEOUT_MS = 5000;
/** Every namespace's loopback device has this ifindex (LOOPBACK_IFINDEX). */
const LOOPBACK_IFINDEX = 1;
/** Consecutive absent ids after which dumpNsids stops probing past the kernel's dump. */
const NSID_PROBE_GAP = 16;

export interface RouteSocketOptions {
  /**
   * Default true: NETLINK_GET_STRICT_CHK (the kernel applies dump filters and rejects malformed
   * requests), NETLINK_EXT_ACK (error messages) and NETLINK_CAP_ACK (short error acks); opening
   * fails if any is unsupported. False: EXT_ACK and CAP_ACK when available, no strict checking
   * (filters are applied in TS either way).
   */
  strict?: boolean;
  /** SO_RCVTIMEO for replies (default 5000 ms); a timeout is a NetlinkError with code ETIMEDOUT. */
  recvTimeoutMs?: number;
  /**
   * Open the socket inside this network namespace (needs the addon's socketInNetns): every request
   * then works in that namespace, as if the process were there.
   */
  netnsFd?: number;
  /** The addon; tests pass a fake. Default: native(). */
  binding?: NativeBinding;
}

/**
 * An addon function this module uses when present (not yet in NativeBinding): socket(2) made by a
 * short-lived native thread that first did setns(nsFd, CLONE_NEWNET). A socket keeps the namespace
 * it was created in, so the event-loop thread never moves.
 */
export interface NetnsSocketFactory {
  socketInNetns(nsFd: number, domain: number, type: number, protocol: number, nonblocking: boolean): number;
}

function socketFactory(nb: NativeBinding): NetnsSocketFactory | undefined {
  const f = (nb as Partial<NetnsSocketFactory>).socketInNetns;
  return typeof f === 'function' ? { socketInNetns: f.bind(nb) } : undefined;
}

export interface LinkDumpOptions {
  targetNsid?: number;
  kind?: string;
  /**
   * Only links on this parent, as a dump reports it: its ifindex in its own namespace and that
   * namespace's nsid in this socket's frame (undefined: the parent is beside the link). An ifindex
   * alone would also match a parent at the same ifindex in any other namespace.
   */
  parent?: { ifindex: number; linkNetnsid: number | undefined };
}

export interface AddressDumpOptions {
  targetNsid?: number;
  family?: 4 | 6;
  ifindex?: number;
}

interface Channel {
  fd: number;
  portId: number;
}

function openChannel(nb: NativeBinding, nonblocking: boolean, strict: boolean, netnsFd?: number): Channel {
  let fd: number;
  if (netnsFd === undefined) {
    fd = nb.socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, nonblocking);
  } else {
    const factory = socketFactory(nb);
    if (!factory) throw new CrossNamespaceError('RouteSocket.open', undefined, 'the native addon has no socketInNetns()');
    fd = factory.socketInNetns(netnsFd, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, nonblocking);
  }
  try {
    const options: Array<[string, number, boolean]> = [
      ['NETLINK_EXT_ACK', NetlinkSockopt.extAck, strict],
      ['NETLINK_CAP_ACK', NetlinkSockopt.capAck, strict],
    ];
    if (strict) options.push(['NETLINK_GET_STRICT_CHK', NetlinkSockopt.getStrictChk, true]);
    for (const [name, opt, required] of options) {
      try {
        nb.setsockoptInt(fd, SOL_NETLINK, opt, 1);
      } catch (e) {
        if (required) throw new Error(`RouteSocket: ${name} is not supported by this kernel (strict mode)`, { cause: e });
      }
    }
    const portId = nb.bindNetlink(fd, 0);
    return { fd, portId };
  } catch (e) {
    nb.close(fd);
    throw e;
  }
}

function timeoutError(op: string, seq: number, ms: number): NetlinkError {
  return new NetlinkError({ op, errno: errnoNumber('ETIMEDOUT') ?? 110, seq, extack: `no reply within ${ms} ms` });
}

function nextSeq(seq: number): number {
  // Sequence numbers start at 1 and skip 0 when they wrap (0 is what notifications carry).
  return seq >= 0xffffffff ? 1 : seq + 1;
}

function checkEcho(op: string, want: number | undefined, got: number | undefined): void {
  if (want === undefined || got === want) return;
  throw new TargetNsidUnsupportedError(op, want, got === undefined ? 'the reply carried no target nsid' : `the reply echoed nsid ${got}`);
}

function selName(sel: LinkSelector): string {
  const who = sel.ifindex !== undefined ? `#${sel.ifindex}` : (sel.ifname ?? '?');
  return sel.targetNsid !== undefined ? `${who}@nsid${sel.targetNsid}` : who;
}

function addrName(sel: AddressSelector): string {
  return `${sel.address}/${sel.prefixLength} dev #${sel.ifindex}`;
}

function routeName(sel: RouteSelector): string {
  const dst = sel.dst === undefined ? 'default' : `${sel.dst}/${sel.dstLength ?? 32}`;
  const via = sel.gateway !== undefined ? ` via ${sel.gateway}` : '';
  const dev = sel.oif !== undefined ? ` dev #${sel.oif}` : '';
  return `${dst}${via}${dev}`;
}

interface Pending {
  collector: ReplyCollector;
  resolve: (messages: NetlinkMessage[]) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

/**
 * A nonblocking NETLINK_ROUTE socket for requests whose sendmsg runs on the libuv thread pool
 * (sendmsgAsync): a group delete holds rtnl_lock for tens of milliseconds. Replies are read when
 * the poller reports the socket readable and handed to the request with that sequence number.
 * Separate from the blocking socket, because libuv makes a polled fd nonblocking.
 */
class AsyncChannel {
  private readonly pending = new Map<number, Pending>();
  private poller: Poller | undefined;
  private polling = false;
  private seq = 0;
  private closed = false;

  constructor(
    private readonly nb: NativeBinding,
    private readonly ch: Channel,
    private readonly timeoutMs: number,
  ) {}

  request(op: string, req: NetlinkRequest, mode: ReplyMode): Promise<NetlinkMessage[]> {
    if (this.closed) return Promise.reject(new Error(`${op}: socket closed`));
    this.seq = nextSeq(this.seq);
    const seq = this.seq;
    const collector = new ReplyCollector(op, seq, this.ch.portId, mode);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.settle(seq, timeoutError(op, seq, this.timeoutMs)), this.timeoutMs);
      this.pending.set(seq, { collector, resolve, reject, timer });
      this.watch();
      this.nb.sendmsgAsync(this.ch.fd, encodeMessage(req, seq), 0, (err, sent) => {
        if (err) this.settle(seq, err);
        else if (sent < 0) this.settle(seq, new NetlinkError({ op, errno: errnoNumber('EAGAIN') ?? 11, seq, extack: 'sendmsg would block' }));
      });
    });
  }

  private settle(seq: number, error: unknown, messages?: NetlinkMessage[]): void {
    const p = this.pending.get(seq);
    if (!p) return;
    this.pending.delete(seq);
    clearTimeout(p.timer);
    if (error !== undefined) p.reject(error);
    else p.resolve(messages ?? []);
    if (this.pending.size === 0) this.unwatch();
  }

  private watch(): void {
    if (this.polling) return;
    this.poller ??= this.nb.poll(this.ch.fd, (err, readable) => this.onPoll(err, readable));
    this.poller.start(true, false);
    this.polling = true;
  }

  private unwatch(): void {
    if (!this.polling) return;
    this.poller?.stop();
    this.polling = false;
  }

  private onPoll(err: Error | null, readable: boolean): void {
    if (err) {
      // The poller stopped itself; fail everything waiting (an overrun lost some replies).
      this.polling = false;
      for (const seq of [...this.pending.keys()]) this.settle(seq, err);
      return;
    }
    if (!readable) return;
    for (;;) {
      let r;
      try {
        r = this.nb.recvmsg(this.ch.fd, RECV_BYTES, 0);
      } catch (e) {
        for (const seq of [...this.pending.keys()]) this.settle(seq, e);
        return;
      }
      if (r === null) return;
      if (r.data.length < 16) continue;
      const seq = decodeHeader(r.data, 0).seq;
      const p = this.pending.get(seq);
      if (!p) continue; // a late reply to a request that timed out
      try {
        if (r.truncated) throw new NetlinkDecodeError(`datagram of ${r.length} bytes truncated to ${RECV_BYTES}`, 0);
        if (p.collector.feed(r.data, r.senderPortId)) this.settle(seq, undefined, p.collector.messages);
      } catch (e) {
        this.settle(seq, e);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const seq of [...this.pending.keys()]) this.settle(seq, new Error('RouteSocket closed'));
    this.poller?.close();
    this.poller = undefined;
    this.nb.close(this.ch.fd);
  }
}

/**
 * Synchronous rtnetlink requests over a blocking NETLINK_ROUTE socket (SO_RCVTIMEO bounds every
 * wait). The kernel handles a request inside sendmsg and queues the replies before sendmsg returns,
 * so a request costs the event loop a few microseconds to a few milliseconds; the exception, group
 * deletion, has deleteGroupAsync. Not for concurrent use from worker threads.
 */
export class RouteSocket {
  private seq = 0;
  private closed = false;
  private async: AsyncChannel | undefined;
  private targetNsidVerified = false;
  /** nsid -> the namespace fd the caller gave getNsid/ensureNsid (caller-owned; checked before use). */
  private readonly nsFds = new Map<number, number>();

  private constructor(
    private readonly nb: NativeBinding,
    private readonly ch: Channel,
    private readonly strict: boolean,
    private readonly timeoutMs: number,
    /** Opened with netnsFd: /proc/self/ns/net is not the socket's namespace. */
    private readonly inOtherNamespace: boolean,
  ) {}

  static open(opts: RouteSocketOptions = {}): RouteSocket {
    const nb = opts.binding ?? native();
    const strict = opts.strict ?? true;
    const timeoutMs = opts.recvTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new RangeError(`recvTimeoutMs must be a positive integer: ${timeoutMs}`);
    const ch = openChannel(nb, false, strict, opts.netnsFd);
    try {
      nb.setTimeouts(ch.fd, timeoutMs, timeoutMs);
    } catch (e) {
      nb.close(ch.fd);
      throw e;
    }
    return new RouteSocket(nb, ch, strict, timeoutMs, opts.netnsFd !== undefined);
  }

  /** Our netlink port id (nl_pid), which the kernel puts in every reply. */
  get portId(): number {
    return this.ch.portId;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.async?.close();
    this.nb.close(this.ch.fd);
  }

  // --- links

  /**
   * RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL. What the kernel does not honour at creation (alias,
   * addrGenMode: see createLinkSteps) is applied right after with RTM_SETLINK, in the new link's
   * namespace (a socket opened there when netnsFd is given); if that fails the link is deleted.
   */
  createLink(req: LinkCreate): void {
    const { create, after } = createLinkSteps(req);
    const op = `createLink(${req.ifname})`;
    const nsFd = create.netnsFd;
    if (after.length > 0 && nsFd !== undefined && !socketFactory(this.nb)) {
      throw new CrossNamespaceError(op, undefined, 'alias and addrGenMode need a socket in the namespace and the native addon has no socketInNetns()');
    }
    this.exchange(op, newLinkRequest(create), 'ack');
    if (after.length === 0) return;
    const configure = (rtnl: RouteSocket): void => {
      try {
        for (const change of after) rtnl.setLink({ ifname: create.ifname }, change);
      } catch (e) {
        // The caller asked for one link with these properties: do not leave a half-made one.
        try {
          rtnl.deleteLink({ ifname: create.ifname });
        } catch {
          // already gone: the original error says more
        }
        throw e;
      }
    };
    if (nsFd === undefined) configure(this);
    else this.inNamespace(nsFd, configure);
  }

  /** RTM_GETLINK; NetlinkError with code ENODEV when there is no such link. */
  getLink(sel: LinkSelector): Link {
    if (sel.netnsFd !== undefined) return this.viaNetnsFd(sel, (r, s) => r.getLink(s));
    const op = `getLink(${selName(sel)})`;
    const [msg] = this.exchange(op, getLinkRequest(sel), 'object');
    if (!msg || msg.header.type !== RTM.NEWLINK) throw new NetlinkDecodeError(`${op}: unexpected reply type ${msg?.header.type}`, 0);
    const link = decodeLink(msg.payload, msg.offset + 16);
    checkEcho(op, sel.targetNsid, link.nsid);
    return link;
  }

  dumpLinks(opts: LinkDumpOptions = {}): Link[] {
    const op = `dumpLinks(${opts.targetNsid !== undefined ? `nsid ${opts.targetNsid}` : 'own'})`;
    const links: Link[] = [];
    for (const msg of this.dump(op, () => dumpLinksRequest({ targetNsid: opts.targetNsid, kind: opts.kind }))) {
      if (msg.header.type !== RTM.NEWLINK) continue;
      const link = decodeLink(msg.payload, msg.offset + 16);
      checkEcho(op, opts.targetNsid, link.nsid);
      // The kernel filters by kind only under strict checking and only for kinds it knows.
      if (opts.kind !== undefined && link.kind !== opts.kind) continue;
      if (opts.parent !== undefined && (link.parentIfindex !== opts.parent.ifindex || link.linkNetnsid !== opts.parent.linkNetnsid)) continue;
      links.push(link);
    }
    return links;
  }

  /**
   * RTM_SETLINK. Renaming a link selected by name looks its ifindex up first. With a target nsid
   * the request goes through a socket opened inside that namespace (RTM_SETLINK cannot address
   * another namespace: the kernel would move the link instead); that needs the addon's
   * socketInNetns() and the namespace's fd, learnt from getNsid/ensureNsid on this socket.
   */
  setLink(sel: LinkSelector, change: LinkChange): void {
    if (sel.netnsFd !== undefined) return this.viaNetnsFd(sel, (r, s) => r.setLink(s, change));
    if (sel.targetNsid !== undefined) {
      const { targetNsid, ...local } = sel;
      this.inNamespace(this.nsFdFor(`setLink(${selName(sel)})`, targetNsid), (rtnl) => rtnl.setLink(local, change));
      return;
    }
    let target = sel;
    if (change.ifname !== undefined && sel.ifindex === undefined) target = { ifindex: this.getLink(sel).ifindex };
    this.exchange(`setLink(${selName(sel)})`, setLinkRequest(target, change), 'ack');
  }

  /**
   * setLink with sendmsg on the thread pool, for a link in this socket's own namespace: some
   * changes wait for an RCU grace period under rtnl_lock (a macvlan's new address: ~13 ms here).
   */
  async setLinkAsync(sel: LinkSelector, change: LinkChange): Promise<void> {
    if (sel.netnsFd !== undefined || sel.targetNsid !== undefined) throw new TypeError('setLinkAsync changes links in the socket\'s own namespace only');
    if (change.ifname !== undefined && sel.ifindex === undefined) throw new TypeError('renaming a link needs it selected by ifindex');
    await this.asyncChannel().request(`setLink(${selName(sel)})`, setLinkRequest(sel, change), 'ack');
  }

  deleteLink(sel: LinkSelector): void {
    if (sel.netnsFd !== undefined) return this.viaNetnsFd(sel, (r, s) => r.deleteLink(s));
    this.verifyTarget(sel.targetNsid);
    this.exchange(`deleteLink(${selName(sel)})`, delLinkRequest(sel), 'ack');
  }

  /** One RTM_DELLINK with IFLA_GROUP: every link of the group goes in a single RCU grace period. */
  deleteGroup(group: number, targetNsid?: number): void {
    this.verifyTarget(targetNsid);
    this.exchange(`deleteGroup(${group}${targetNsid !== undefined ? `@nsid${targetNsid}` : ''})`, delGroupRequest(group, targetNsid), 'ack');
  }

  /** deleteGroup with sendmsg on the thread pool (it holds rtnl_lock for ~20-40 ms); the ack is polled. */
  async deleteGroupAsync(group: number, targetNsid?: number): Promise<void> {
    this.verifyTarget(targetNsid);
    const op = `deleteGroup(${group}${targetNsid !== undefined ? `@nsid${targetNsid}` : ''})`;
    await this.asyncChannel().request(op, delGroupRequest(group, targetNsid), 'ack');
  }

  // --- namespace ids

  /** RTM_GETNSID with NETNSA_FD: our nsid for that namespace, undefined when none is assigned. */
  getNsid(nsFd: number): number | undefined {
    const nsid = this.queryNsid(`getNsid(fd ${nsFd})`, nsFd);
    if (nsid !== undefined) this.nsFds.set(nsid, nsFd);
    return nsid;
  }

  /**
   * The id our namespace has for itself, undefined while it has none. A link reported to us that
   * lives in another namespace but hangs off a link of ours carries it as IFLA_LINK_NETNSID (the
   * kernel assigns it the first time it reports such a link). Only for a socket in the process's
   * own namespace: for one opened inside another, ask getNsid() with that namespace's descriptor.
   */
  selfNsid(): number | undefined {
    if (this.inOtherNamespace) throw new CrossNamespaceError('selfNsid', undefined, 'the socket was opened inside another namespace: use getNsid(its fd)');
    const fd = openSync('/proc/self/ns/net', fsConstants.O_RDONLY);
    try {
      return this.queryNsid('selfNsid', fd);
    } finally {
      closeSync(fd);
    }
  }

  private queryNsid(op: string, nsFd: number): number | undefined {
    const [msg] = this.exchange(op, getNsidRequest(nsFd), 'object');
    if (!msg || msg.header.type !== RTM.NEWNSID) throw new NetlinkDecodeError(`${op}: unexpected reply type ${msg?.header.type}`, 0);
    return decodeNsid(msg.payload, msg.offset + 16).nsid;
  }

  /** getNsid, else RTM_NEWNSID with NETNSA_NSID -1 (the kernel picks); EEXIST races are fine. */
  ensureNsid(nsFd: number): number {
    const known = this.getNsid(nsFd);
    if (known !== undefined) return known;
    try {
      this.exchange(`ensureNsid(fd ${nsFd})`, newNsidRequest(nsFd), 'ack');
    } catch (e) {
      if (!(e instanceof NetlinkError && e.code === 'EEXIST')) throw e;
    }
    const id = this.getNsid(nsFd);
    if (id === undefined) throw new Error(`ensureNsid(fd ${nsFd}): the kernel assigned no nsid`);
    return id;
  }

  /**
   * Every nsid our namespace has assigned. The kernel's RTM_GETNSID dump (seen on 6.18, and
   * `ip netns list-id` is cut the same way) ends after its first batch, about 134 ids on a fresh
   * socket, so the ids above the highest one dumped are probed: the kernel hands out the lowest
   * free id, so they are dense, and a RTM_GETLINK of a namespace's loopback with that target
   * nsid succeeds exactly when the id exists. Probing stops after NSID_PROBE_GAP misses in a row.
   */
  dumpNsids(): Array<{ nsid: number }> {
    const seen = new Set<number>();
    for (const msg of this.dump('dumpNsids', () => dumpNsidsRequest())) {
      if (msg.header.type !== RTM.NEWNSID) continue;
      const { nsid } = decodeNsid(msg.payload, msg.offset + 16);
      if (nsid !== undefined) seen.add(nsid);
    }
    let misses = 0;
    for (let nsid = seen.size === 0 ? 0 : Math.max(...seen) + 1; misses < NSID_PROBE_GAP; nsid++) {
      try {
        this.getLink({ ifindex: LOOPBACK_IFINDEX, targetNsid: nsid });
        seen.add(nsid);
        misses = 0;
      } catch {
        misses++;
      }
    }
    return [...seen].sort((a, b) => a - b).map((nsid) => ({ nsid }));
  }

  // --- addresses

  dumpAddresses(opts: AddressDumpOptions = {}): Address[] {
    const op = `dumpAddresses(${opts.targetNsid !== undefined ? `nsid ${opts.targetNsid}` : 'own'})`;
    const want = familyNumber(opts.family);
    const out: Address[] = [];
    for (const msg of this.dump(op, () => dumpAddressesRequest(opts))) {
      if (msg.header.type !== RTM.NEWADDR) continue;
      const addr = decodeAddress(msg.payload, msg.offset + 16);
      if (addr === undefined) continue;
      checkEcho(op, opts.targetNsid, addr.nsid);
      // Without strict checking the kernel ignores the header filters.
      if (want !== 0 && familyNumber(addr.family) !== want) continue;
      if (opts.ifindex !== undefined && addr.ifindex !== opts.ifindex) continue;
      out.push(addr);
    }
    return out;
  }

  /**
   * RTM_NEWADDR with NLM_F_CREATE|NLM_F_EXCL: an IPv4 address with lifetimes (a lease) in this
   * socket's namespace (open it inside the workload's: openInNamespace). NetlinkError EEXIST when
   * the device has that address already, ENODEV without the device.
   */
  addAddress(req: AddressCreate): void {
    this.exchange(`addAddress(${addrName(req)})`, newAddressRequest({ ...req, replace: false }), 'ack');
  }

  /**
   * RTM_NEWADDR with NLM_F_CREATE|NLM_F_REPLACE: adds the address, or gives the one there (same
   * address and prefix on the device) the new lifetimes and broadcast: a lease renewal.
   */
  replaceAddress(req: AddressCreate): void {
    this.exchange(`replaceAddress(${addrName(req)})`, newAddressRequest({ ...req, replace: true }), 'ack');
  }

  /** RTM_DELADDR; NetlinkError EADDRNOTAVAIL when the device has no such address. */
  deleteAddress(sel: AddressSelector): void {
    this.exchange(`deleteAddress(${addrName(sel)})`, delAddressRequest(sel), 'ack');
  }

  // --- routes

  /**
   * RTM_GETROUTE dump, by default of table main and every family; the family and table filters
   * are applied in TS too (the kernel applies them only under strict checking).
   */
  dumpRoutes(opts: RouteDumpOptions = {}): Route[] {
    const op = `dumpRoutes(${opts.family !== undefined ? `IPv${opts.family}` : 'all families'}, table ${opts.table ?? RT_TABLE.MAIN})`;
    const table = opts.table ?? RT_TABLE.MAIN;
    const out: Route[] = [];
    for (const msg of this.dump(op, () => dumpRoutesRequest(opts))) {
      if (msg.header.type !== RTM.NEWROUTE) continue;
      const route = decodeRoute(msg.payload, msg.offset + 16);
      if (route === undefined) continue;
      if (opts.family !== undefined && route.family !== opts.family) continue;
      if (table !== RT_TABLE.UNSPEC && route.table !== table) continue;
      out.push(route);
    }
    return out;
  }

  /**
   * RTM_NEWROUTE with NLM_F_CREATE|NLM_F_EXCL. NetlinkError EEXIST when the table has a route to
   * that destination with that metric already (for a default route: any default, whatever its
   * gateway), ENETUNREACH when the gateway is not on a network of the device.
   */
  addRoute(req: RouteCreate): void {
    this.exchange(`addRoute(${routeName(req)})`, newRouteRequest(req), 'ack');
  }

  /** RTM_DELROUTE of the first route that matches; NetlinkError ESRCH when none does. */
  deleteRoute(sel: RouteSelector): void {
    this.exchange(`deleteRoute(${routeName(sel)})`, delRouteRequest(sel), 'ack');
  }

  // --- plumbing

  private exchange(op: string, req: NetlinkRequest, mode: ReplyMode): NetlinkMessage[] {
    if (this.closed) throw new Error(`${op}: RouteSocket is closed`);
    this.seq = nextSeq(this.seq);
    const seq = this.seq;
    const collector = new ReplyCollector(op, seq, this.ch.portId, mode);
    const sent = this.nb.sendmsg(this.ch.fd, encodeMessage(req, seq), undefined, 0);
    if (sent < 0) throw timeoutError(op, seq, this.timeoutMs);
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const r = this.nb.recvmsg(this.ch.fd, RECV_BYTES, 0);
      if (r === null) throw timeoutError(op, seq, this.timeoutMs);
      if (r.truncated) throw new NetlinkDecodeError(`${op}: datagram of ${r.length} bytes truncated to ${RECV_BYTES}`, 0);
      if (collector.feed(r.data, r.senderPortId)) return collector.messages;
      // Only stale datagrams keep arriving: SO_RCVTIMEO alone would never fire.
      if (Date.now() > deadline) throw timeoutError(op, seq, this.timeoutMs);
    }
  }

  private dump(op: string, build: () => NetlinkRequest): NetlinkMessage[] {
    for (let attempt = 1; ; attempt++) {
      try {
        return this.exchange(op, build(), 'dump');
      } catch (e) {
        if (!(e instanceof DumpInterruptedError)) throw e;
        if (attempt > DUMP_RETRIES) throw new DumpInterruptedError(op, e.seq, attempt);
      }
    }
  }

  /**
   * Before the first request that changes something in another namespace by nsid, checks that the
   * kernel honours IFLA_TARGET_NETNSID (a kernel that ignored it would act on our own namespace):
   * a RTM_GETLINK of that namespace's loopback must echo the nsid.
   */
  private verifyTarget(targetNsid: number | undefined): void {
    if (targetNsid === undefined || this.targetNsidVerified) return;
    this.getLink({ ifindex: LOOPBACK_IFINDEX, targetNsid });
    this.targetNsidVerified = true;
  }

  /** The fd of the namespace with this nsid, if the caller showed it to us and it still is that one. */
  private nsFdFor(op: string, nsid: number): number {
    const fd = this.nsFds.get(nsid);
    if (fd === undefined) throw new CrossNamespaceError(op, nsid, 'no namespace fd known for it: call getNsid(fd) or ensureNsid(fd) first');
    let now: number | undefined;
    try {
      now = this.getNsid(fd);
    } catch {
      now = undefined;
    }
    if (now !== nsid) {
      this.nsFds.delete(nsid);
      throw new CrossNamespaceError(op, nsid, `fd ${fd} no longer refers to that namespace`);
    }
    return fd;
  }

  private viaNetnsFd<T>(sel: LinkSelector, fn: (rtnl: RouteSocket, local: LinkSelector) => T): T {
    const { netnsFd, targetNsid, ...local } = sel;
    if (targetNsid !== undefined) throw new TypeError('a link selector takes targetNsid or netnsFd, not both');
    return this.inNamespace(netnsFd!, (rtnl) => fn(rtnl, local));
  }

  /**
   * A RouteSocket inside the namespace of nsFd, with this one's options; the caller closes it. Keep
   * it only for requests made together: in a namespace whose owner is not ours, processes there
   * with CAP_NET_ADMIN can send datagrams to the socket's port.
   */
  openInNamespace(nsFd: number): RouteSocket {
    return RouteSocket.open({ strict: this.strict, recvTimeoutMs: this.timeoutMs, binding: this.nb, netnsFd: nsFd });
  }

  /** Runs fn with a short-lived RouteSocket opened inside the namespace of nsFd. */
  private inNamespace<T>(nsFd: number, fn: (rtnl: RouteSocket) => T): T {
    const local = this.openInNamespace(nsFd);
    try {
      return fn(local);
    } finally {
      local.close();
    }
  }

  private asyncChannel(): AsyncChannel {
    if (this.closed) throw new Error('RouteSocket is closed');
    this.async ??= new AsyncChannel(this.nb, openChannel(this.nb, true, this.strict), this.timeoutMs);
    return this.async;
  }
}
