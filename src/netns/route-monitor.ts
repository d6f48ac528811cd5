import { EventEmitter } from 'node:events';
import { native, type NativeBinding, type Poller, type RecvResult } from '../native/index.js';
import { AF_NETLINK, NETLINK_ROUTE, NetlinkSockopt, SO_RCVBUF, SO_RCVBUFFORCE, SOCK_RAW, SOL_NETLINK, SOL_SOCKET } from './netlink/constants.js';
import { decodeMessages } from './netlink/message.js';
import { decodeAddress } from './rtnl/address.js';
import { RTM, RTNLGRP } from './rtnl/constants.js';
import { decodeIfInfo, decodeLink, decodeLinkBrief } from './rtnl/link.js';
import { decodeNsid } from './rtnl/nsid.js';
import type { Address, Link } from './types.js';

export type RouteGroup = 'link' | 'ipv4-ifaddr' | 'ipv6-ifaddr' | 'nsid';

const GROUPS: Record<RouteGroup, number> = {
  link: RTNLGRP.LINK,
  'ipv4-ifaddr': RTNLGRP.IPV4_IFADDR,
  'ipv6-ifaddr': RTNLGRP.IPV6_IFADDR,
  nsid: RTNLGRP.NSID,
};

/**
 * `nsid` comes from the NETLINK_LISTEN_ALL_NSID control message: undefined means our own namespace.
 * The kernel delivers another namespace's events only if our namespace has an nsid for it.
 */
export type RouteEvent =
  | { type: 'newlink'; nsid: number | undefined; link: Link }
  | { type: 'dellink'; nsid: number | undefined; link: Link }
  | { type: 'newaddr'; nsid: number | undefined; address: Address }
  | { type: 'deladdr'; nsid: number | undefined; address: Address }
  /** nsidValue: the nsid being assigned or removed (the event itself comes from namespace `nsid`). */
  | { type: 'newnsid'; nsid: number | undefined; nsidValue: number | undefined }
  | { type: 'delnsid'; nsid: number | undefined; nsidValue: number | undefined }
  /** The socket overflowed (ENOBUFS): events were lost, the receiver must dump again. */
  | { type: 'overrun'; nsid: undefined };

export type RouteEventType = RouteEvent['type'];

export interface RouteMonitorOptions {
  groups?: RouteGroup[];
  /** Receive buffer in bytes: SO_RCVBUFFORCE (root), else SO_RCVBUF (capped by rmem_max). */
  rcvbuf?: number;
  /** NETLINK_LISTEN_ALL_NSID (default true): events of every namespace we have an nsid for. */
  allNsid?: boolean;
  /** Which link events to decode and emit, asked before decoding: the others cost a header read. */
  linkFilter?: LinkFilter;
  /** Decode link events with decodeLinkBrief (identity, address, kind, move target; the rest undefined). */
  briefLinks?: boolean;
  binding?: NativeBinding;
}

/** nsid as in RouteEvent, ifindex from the event's ifinfomsg. */
export type LinkFilter = (nsid: number | undefined, ifindex: number) => boolean;

export interface DatagramOptions {
  linkFilter?: LinkFilter | undefined;
  briefLinks?: boolean | undefined;
}

const RECV_BYTES = 65536;
/**
 * Read for at most this long per readiness callback, so that a flood of events (anyone who may
 * change a link in a namespace we have an nsid for can make one) leaves the event loop to timers
 * and other sockets in between; the poller is level-triggered and calls again.
 */
const SLICE_MS = 10;

/** Turns one received datagram into events (exported for tests and for replaying captures). */
export function eventsFromDatagram(data: Buffer, nsid: number | undefined, opts: DatagramOptions = {}): { events: RouteEvent[]; errors: Error[] } {
  const events: RouteEvent[] = [];
  const errors: Error[] = [];
  let messages;
  try {
    messages = decodeMessages(data);
  } catch (e) {
    return { events, errors: [e as Error] };
  }
  for (const m of messages) {
    try {
      const base = m.offset + 16;
      switch (m.header.type) {
        case RTM.NEWLINK:
        case RTM.DELLINK: {
          if (opts.linkFilter !== undefined && !opts.linkFilter(nsid, decodeIfInfo(m.payload, base).index)) break;
          const link = opts.briefLinks ? decodeLinkBrief(m.payload, base) : decodeLink(m.payload, base);
          link.nsid = nsid;
          events.push({ type: m.header.type === RTM.NEWLINK ? 'newlink' : 'dellink', nsid, link });
          break;
        }
        case RTM.NEWADDR:
        case RTM.DELADDR: {
          const address = decodeAddress(m.payload, base);
          if (address === undefined) break;
          address.nsid = nsid;
          events.push({ type: m.header.type === RTM.NEWADDR ? 'newaddr' : 'deladdr', nsid, address });
          break;
        }
        case RTM.NEWNSID:
        case RTM.DELNSID:
          events.push({ type: m.header.type === RTM.NEWNSID ? 'newnsid' : 'delnsid', nsid, nsidValue: decodeNsid(m.payload, base).nsid });
          break;
        default:
          break;
      }
    } catch (e) {
      errors.push(e as Error);
    }
  }
  return { events, errors };
}

export interface RouteMonitor {
  on(event: 'event', listener: (e: RouteEvent) => void): this;
  on<T extends RouteEventType>(event: T, listener: (e: Extract<RouteEvent, { type: T }>) => void): this;
  /** A message that could not be decoded (the monitor keeps going). */
  on(event: 'warning', listener: (e: Error) => void): this;
  /** The socket failed for another reason than an overrun; the monitor is closed. */
  on(event: 'error', listener: (e: Error) => void): this;
}

/**
 * rtnetlink notifications on a nonblocking socket, read when the addon's poller reports it
 * readable. Each event is emitted twice: under its type ('newlink', ...) and under 'event'.
 */
export class RouteMonitor extends EventEmitter {
  private poller: Poller | undefined;
  private closed = false;

  private constructor(
    private readonly nb: NativeBinding,
    readonly fd: number,
    readonly portId: number,
    private readonly decoding: DatagramOptions,
  ) {
    super();
  }

  static open(opts: RouteMonitorOptions = {}): RouteMonitor {
    const nb = opts.binding ?? native();
    const fd = nb.socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, true);
    let portId: number;
    try {
      if (opts.rcvbuf !== undefined) {
        try {
          nb.setsockoptInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, opts.rcvbuf);
        } catch {
          nb.setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, opts.rcvbuf);
        }
      }
      portId = nb.bindNetlink(fd, 0);
      if (opts.allNsid ?? true) nb.setsockoptInt(fd, SOL_NETLINK, NetlinkSockopt.listenAllNsid, 1);
      for (const g of opts.groups ?? (['link', 'ipv4-ifaddr', 'ipv6-ifaddr', 'nsid'] as RouteGroup[])) {
        nb.setsockoptInt(fd, SOL_NETLINK, NetlinkSockopt.addMembership, GROUPS[g]);
      }
    } catch (e) {
      nb.close(fd);
      throw e;
    }
    const m = new RouteMonitor(nb, fd, portId, { linkFilter: opts.linkFilter, briefLinks: opts.briefLinks });
    m.poller = nb.poll(fd, (err, readable) => m.onPoll(err, readable));
    m.poller.start(true, false);
    return m;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.poller?.close();
    this.poller = undefined;
    this.nb.close(this.fd);
  }

  private isOverrun(e: unknown): boolean {
    return (e as { code?: string } | null)?.code === 'ENOBUFS';
  }

  private overrun(): void {
    const e: RouteEvent = { type: 'overrun', nsid: undefined };
    this.emit('overrun', e);
    this.emit('event', e);
  }

  private fail(e: unknown): void {
    this.close();
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  private onPoll(err: Error | null, readable: boolean): void {
    if (this.closed) return;
    if (err) {
      if (!this.isOverrun(err)) return this.fail(err);
      this.overrun();
      // The poller stops itself on an error: watch again, then read what is queued.
      this.poller?.start(true, false);
      readable = true;
    }
    if (!readable) return;
    const started = Date.now();
    for (let n = 1; ; n++) {
      if ((n & 63) === 0 && Date.now() - started > SLICE_MS) return; // the rest on the next call
      let r: RecvResult | null;
      try {
        r = this.nb.recvmsg(this.fd, RECV_BYTES, 0);
      } catch (e) {
        if (this.isOverrun(e)) {
          this.overrun();
          continue;
        }
        return this.fail(e);
      }
      if (r === null || this.closed) return;
      if (r.senderPortId !== undefined && r.senderPortId !== 0) continue;
      if (r.truncated) {
        // Something was lost: as good as an overrun for the receiver.
        this.overrun();
        continue;
      }
      const { events, errors } = eventsFromDatagram(r.data, r.nsid, this.decoding);
      for (const w of errors) this.emit('warning', w);
      for (const ev of events) {
        this.emit(ev.type, ev);
        this.emit('event', ev);
        if (this.closed) return;
      }
    }
  }
}
