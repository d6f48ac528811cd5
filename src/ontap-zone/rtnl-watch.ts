/**
 * One NETLINK_ROUTE socket for everything ontap-zone learns: notifications of every namespace we
 * have an nsid for (NETLINK_LISTEN_ALL_NSID; groups link, IPv4/IPv6 addresses, nsid) AND the dumps
 * (with IFLA_TARGET_NETNSID / IFA_TARGET_NETNSID under NETLINK_GET_STRICT_CHK). One socket, because
 * then dump records and notifications arrive in one order, the kernel's: whatever is read later is
 * newer, so applying both in read order converges without comparing anything.
 *
 * src/netns has RouteMonitor (notifications only) and RouteSocket (dumps on a second, blocking
 * socket); neither offers dumps on the monitor's socket, so this module composes their pieces (the
 * request builders and decoders of src/netns/rtnl, ReplyCollector, eventsFromDatagram) and handles no
 * netlink bytes itself. One dump at a time (the kernel runs one per socket); replies are told apart
 * from notifications by nlmsg_pid (our port id: notifications carry the originator's).
 */
import { native, type NativeBinding, type Poller, type RecvResult } from '../native/index.js';
import { ReplyCollector } from '../netns/netlink/collector.js';
import { AF_NETLINK, NETLINK_ROUTE, NetlinkSockopt, SO_RCVBUF, SO_RCVBUFFORCE, SOCK_RAW, SOL_NETLINK, SOL_SOCKET } from '../netns/netlink/constants.js';
import { DumpInterruptedError, NetlinkError, TargetNsidUnsupportedError } from '../netns/netlink/errors.js';
import { decodeHeader, encodeMessage, type NetlinkMessage, type NetlinkRequest } from '../netns/netlink/message.js';
import { eventsFromDatagram, type RouteEvent } from '../netns/route-monitor.js';
import { decodeAddress, dumpAddressesRequest } from '../netns/rtnl/address.js';
import { RTM, RTNLGRP } from '../netns/rtnl/constants.js';
import { decodeLink, dumpLinksRequest } from '../netns/rtnl/link.js';
import { decodeNsid, dumpNsidsRequest } from '../netns/rtnl/nsid.js';
import type { Address, Link } from '../netns/types.js';

const RECV_BYTES = 65536;
/** Read at most this long per poll callback, so timers (the writer) run during storms. */
const SLICE_MS = 10;
/** EBUSY: a dump we gave up on (ENOBUFS) still runs in the kernel; try again after this. */
const BUSY_RETRY_MS = 2;
export const DEFAULT_RCVBUF = 4 << 20;

export type DumpOutcome =
  | { ok: true }
  /** NLM_F_DUMP_INTR: the records were consistent one by one but some may be missing. */
  | { ok: false; interrupted: true }
  | { ok: false; interrupted: false; error: Error };

interface JobBase {
  /** Called when the request is sent (a sweep starts from the model's tick at that moment). */
  onStart?(): void;
  onEnd(outcome: DumpOutcome): void;
}
export type DumpJob =
  | (JobBase & { what: 'nsids'; onRecord(nsid: number): void })
  | (JobBase & { what: 'links'; nsid: number; onRecord(link: Link): void })
  | (JobBase & { what: 'addresses'; nsid: number; onRecord(address: Address): void });

export interface RtnlWatchOptions {
  /** SO_RCVBUFFORCE (root), else SO_RCVBUF. Default 4 MiB. */
  rcvbuf?: number;
  binding?: NativeBinding;
}

export interface RtnlWatchHandlers {
  event(e: RouteEvent): void;
  /** Notifications were lost (ENOBUFS, or a truncated datagram): everything must be dumped again. */
  overrun(): void;
  /** No dump queued or running any more. */
  idle(): void;
  /** The socket failed for good; the watch is closed. */
  error(e: Error): void;
  /** An undecodable notification (skipped). */
  warning(e: Error): void;
}

interface Running {
  job: DumpJob;
  seq: number;
  collector: ReplyCollector;
}

function jobName(job: DumpJob): string {
  return job.what === 'nsids' ? 'dump nsids' : `dump ${job.what} of nsid ${job.nsid}`;
}

function request(job: DumpJob): NetlinkRequest {
  switch (job.what) {
    case 'nsids': return dumpNsidsRequest();
    case 'links': return dumpLinksRequest({ targetNsid: job.nsid });
    case 'addresses': return dumpAddressesRequest({ targetNsid: job.nsid });
  }
}

export class RtnlWatch {
  private readonly queue: DumpJob[] = [];
  private running: Running | undefined;
  private poller: Poller | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private seq = 0;
  private closed = false;
  /** Counters for logs and tests. */
  readonly stats = { datagrams: 0, events: 0, dumps: 0, interrupted: 0, overruns: 0, busy: 0, staleReplies: 0 };

  private constructor(
    private readonly nb: NativeBinding,
    readonly fd: number,
    readonly portId: number,
    private readonly on: RtnlWatchHandlers,
  ) {}

  static open(handlers: RtnlWatchHandlers, opts: RtnlWatchOptions = {}): RtnlWatch {
    const nb = opts.binding ?? native();
    const fd = nb.socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, true);
    let portId: number;
    try {
      for (const [name, opt] of [['NETLINK_EXT_ACK', NetlinkSockopt.extAck], ['NETLINK_CAP_ACK', NetlinkSockopt.capAck], ['NETLINK_GET_STRICT_CHK', NetlinkSockopt.getStrictChk]] as const) {
        try {
          nb.setsockoptInt(fd, SOL_NETLINK, opt, 1);
        } catch (e) {
          throw new Error(`ontap-zone needs ${name} (Linux 4.20 or later)`, { cause: e });
        }
      }
      const rcvbuf = opts.rcvbuf ?? DEFAULT_RCVBUF;
      try {
        nb.setsockoptInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf);
      } catch {
        nb.setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf);
      }
      portId = nb.bindNetlink(fd, 0);
      nb.setsockoptInt(fd, SOL_NETLINK, NetlinkSockopt.listenAllNsid, 1);
      for (const g of [RTNLGRP.LINK, RTNLGRP.IPV4_IFADDR, RTNLGRP.IPV6_IFADDR, RTNLGRP.NSID]) {
        nb.setsockoptInt(fd, SOL_NETLINK, NetlinkSockopt.addMembership, g);
      }
    } catch (e) {
      nb.close(fd);
      throw e;
    }
    const w = new RtnlWatch(nb, fd, portId, handlers);
    w.poller = nb.poll(fd, (err, readable) => w.onPoll(err, readable));
    w.poller.start(true, false);
    return w;
  }

  /** Dumps queued or running. */
  get pending(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  /** The queued (not yet started) jobs, to avoid queueing the same dump twice. */
  queued(): readonly DumpJob[] {
    return this.queue;
  }

  enqueue(job: DumpJob): void {
    if (this.closed) return;
    this.queue.push(job);
    this.pump();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.queue.length = 0;
    this.running = undefined;
    this.poller?.close();
    this.poller = undefined;
    this.nb.close(this.fd);
  }

  /** Sends the next dump if none runs. Its first batch is queued before sendmsg returns. */
  private pump(): void {
    if (this.closed || this.running || this.retryTimer) return;
    const job = this.queue.shift();
    if (!job) return;
    this.seq = this.seq >= 0xffffffff ? 1 : this.seq + 1;
    const seq = this.seq;
    let sent: number;
    try {
      sent = this.nb.sendmsg(this.fd, encodeMessage(request(job), seq), undefined, 0);
    } catch (e) {
      this.on.error(e as Error);
      this.close();
      return;
    }
    if (sent < 0) {
      // EAGAIN on a netlink send to the kernel: try again shortly.
      this.queue.unshift(job);
      this.later();
      return;
    }
    this.stats.dumps++;
    this.running = { job, seq, collector: new ReplyCollector(jobName(job), seq, this.portId, 'dump') };
    job.onStart?.();
  }

  private later(): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, BUSY_RETRY_MS);
  }

  private finish(outcome: DumpOutcome): void {
    const r = this.running;
    if (!r) return;
    this.running = undefined;
    if (!outcome.ok && !outcome.interrupted && outcome.error instanceof NetlinkError) {
      const code = outcome.error.code;
      if (code === 'EBUSY' || code === 'ENOBUFS') {
        // EBUSY: an abandoned dump still runs; ENOBUFS: the kernel could not queue our dump's
        // first batch (notifications filled the buffer) and reports it as the dump's error.
        if (code === 'ENOBUFS') this.overrun();
        else this.stats.busy++;
        this.queue.unshift(r.job);
        this.later();
        return;
      }
    }
    if (!outcome.ok && outcome.interrupted) this.stats.interrupted++;
    r.job.onEnd(outcome);
    if (this.closed) return;
    this.pump();
    if (!this.running && this.queue.length === 0 && !this.retryTimer) this.on.idle();
  }

  private overrun(): void {
    this.stats.overruns++;
    this.on.overrun();
  }

  private deliver(r: Running, msg: NetlinkMessage): void {
    const base = msg.offset + 16;
    const job = r.job;
    switch (job.what) {
      case 'nsids':
        if (msg.header.type === RTM.NEWNSID) {
          const { nsid } = decodeNsid(msg.payload, base);
          if (nsid !== undefined) job.onRecord(nsid);
        }
        break;
      case 'links':
        if (msg.header.type === RTM.NEWLINK) {
          const link = decodeLink(msg.payload, base);
          if (link.nsid !== job.nsid) throw new TargetNsidUnsupportedError(jobName(job), job.nsid, `the reply echoed nsid ${link.nsid}`);
          job.onRecord(link);
        }
        break;
      case 'addresses':
        if (msg.header.type === RTM.NEWADDR) {
          const address = decodeAddress(msg.payload, base);
          if (address === undefined) break;
          if (address.nsid !== job.nsid) throw new TargetNsidUnsupportedError(jobName(job), job.nsid, `the reply echoed nsid ${address.nsid}`);
          job.onRecord(address);
        }
        break;
    }
  }

  /** One datagram of the running dump: its records are applied now, between the notifications around it. */
  private reply(r: Running, data: Buffer): void {
    let done = false;
    let failure: unknown;
    try {
      done = r.collector.feed(data, 0);
    } catch (e) {
      failure = e;
    }
    try {
      for (const msg of r.collector.messages) this.deliver(r, msg);
    } catch (e) {
      failure ??= e;
    }
    r.collector.messages.length = 0;
    if (failure instanceof DumpInterruptedError) this.finish({ ok: false, interrupted: true });
    else if (failure !== undefined) this.finish({ ok: false, interrupted: false, error: failure as Error });
    else if (done) this.finish({ ok: true });
  }

  private onPoll(err: Error | null, readable: boolean): void {
    if (this.closed) return;
    if (err) {
      if ((err as { code?: string }).code !== 'ENOBUFS') {
        this.close();
        this.on.error(err);
        return;
      }
      this.overrun();
      // The poller stops itself on an error: watch again, then read what is queued.
      this.poller?.start(true, false);
      readable = true;
    }
    if (!readable) return;
    const started = Date.now();
    for (let n = 0; ; n++) {
      if ((n & 63) === 63 && Date.now() - started > SLICE_MS) return; // more next turn (level-triggered)
      let r: RecvResult | null;
      try {
        r = this.nb.recvmsg(this.fd, RECV_BYTES, 0);
      } catch (e) {
        if ((e as { code?: string }).code === 'ENOBUFS') {
          this.overrun();
          continue;
        }
        this.close();
        this.on.error(e as Error);
        return;
      }
      if (r === null || this.closed) return;
      this.stats.datagrams++;
      if (r.senderPortId !== undefined && r.senderPortId !== 0) continue;
      if (r.data.length < 16) continue;
      const h = decodeHeader(r.data, 0);
      if (h.pid === this.portId) {
        // A reply: to the running dump, or late to one we abandoned.
        const running = this.running;
        if (!running || h.seq !== running.seq) {
          this.stats.staleReplies++;
          continue;
        }
        if (r.truncated) {
          this.finish({ ok: false, interrupted: false, error: new Error(`${jobName(running.job)}: datagram of ${r.length} bytes truncated`) });
          continue;
        }
        this.reply(running, r.data);
        continue;
      }
      if (r.truncated) {
        this.overrun();
        continue;
      }
      const { events, errors } = eventsFromDatagram(r.data, r.nsid);
      for (const w of errors) this.on.warning(w);
      for (const e of events) {
        this.stats.events++;
        this.on.event(e);
        if (this.closed) return;
      }
    }
  }
}
