import { EventEmitter } from 'node:events';
import { statSync } from 'node:fs';
import { NETLINK_CONNECTOR } from '../native/constants.js';
import { native, type NativeBinding, type Poller, type RecvResult } from '../native/index.js';
import { AF_NETLINK, SO_RCVBUF, SO_RCVBUFFORCE, SOCK_RAW, SOL_SOCKET } from './netlink/constants.js';
import { errnoCode } from './netlink/errors.js';
import { CN_IDX_PROC, decodeProcEvents, encodeProcSubscription, type ProcEvent } from './proc-events.js';

/** The events a monitor emits: every kind but the acks, which it consumes itself. */
export type ProcMonitorEvent = Exclude<ProcEvent, { kind: 'ack' }>;
export type ProcMonitorEventKind = ProcMonitorEvent['kind'];

export interface ProcEventMonitorOptions {
  /**
   * Receive buffer in bytes (default 4 MiB, which the kernel doubles: 10082 events fitted on 6.18,
   * 832 bytes of skb each): SO_RCVBUFFORCE (root), else SO_RCVBUF (capped by rmem_max). 0 keeps
   * the kernel's default.
   */
  rcvbuf?: number;
  /** Datagrams (one event each) read per readiness callback at most (default 256). */
  batch?: number;
  /** The addon; tests pass a fake. Default: native(). */
  binding?: NativeBinding;
  /**
   * Make the socket in this network namespace (a descriptor of it): the connector answers only
   * in the initial one, and ontap-zone may run in another (its tests do; /proc/1/ns/net is the
   * initial one wherever it runs in the initial pid namespace).
   */
  netnsFd?: number;
}

const DEFAULT_RCVBUF = 4 << 20;
const DEFAULT_BATCH = 256;
/** One event is 76 bytes; anything longer is not one of the connector's and is reported as loss. */
const RECV_BYTES = 4096;

/**
 * The kernel ignores subscriptions from outside the initial user and pid namespaces without a
 * word (no ack), so open() checks first. These are the fixed inode numbers of the initial
 * namespaces (PROC_USER_INIT_INO, PROC_PID_INIT_INO in include/linux/proc_ns.h).
 */
const INIT_NS_INODES: Array<[string, number]> = [
  ['user', 0xeffffffd],
  ['pid', 0xeffffffc],
];

/**
 * The kernel will not report process events to this monitor: not allowed (EPERM: Linux 6.1 wants
 * CAP_NET_ADMIN in the initial user namespace, at bind(2) already; 6.18 lets anyone subscribe),
 * asked from a namespace it ignores (ECONNREFUSED: the connector exists only in the initial
 * network namespace; code 'ENAMESPACE', no errno: open()'s initial user/pid namespace check), or
 * refused in an ack (its errno).
 */
export class ProcEventSubscribeError extends Error {
  /** Positive errno, when the kernel gave one. */
  readonly errno: number | undefined;
  readonly code: string;
  constructor(message: string, code: string, errno: number | undefined, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.errno = errno;
  }
}
Object.defineProperty(ProcEventSubscribeError.prototype, 'name', { value: 'ProcEventSubscribeError', configurable: true, writable: true });

function errnoOf(e: unknown): { code: string | undefined; errno: number | undefined } {
  const x = e as { code?: unknown; errno?: unknown } | null;
  return { code: typeof x?.code === 'string' ? x.code : undefined, errno: typeof x?.errno === 'number' ? x.errno : undefined };
}

function checkNamespaces(): void {
  for (const [ns, ino] of INIT_NS_INODES) {
    let got: number;
    try {
      got = statSync(`/proc/self/ns/${ns}`).ino;
    } catch {
      continue; // no /proc: let the kernel decide
    }
    if (got !== ino) {
      throw new ProcEventSubscribeError(
        `process events: this process is not in the initial ${ns} namespace, whose subscriptions the kernel ignores`,
        'ENAMESPACE',
        undefined,
      );
    }
  }
}

export interface ProcEventMonitor {
  on(event: 'event', listener: (e: ProcMonitorEvent) => void): this;
  on<K extends ProcMonitorEventKind>(event: K, listener: (e: Extract<ProcMonitorEvent, { kind: K }>) => void): this;
  /**
   * The kernel dropped events (ENOBUFS, or a datagram too long to read). Emitted once per loss,
   * after the events that were queued before it: every event emitted earlier happened before the
   * loss, every later one after it, so a rescan of /proc done in the listener sits between them.
   */
  on(event: 'overrun', listener: () => void): this;
  /** The kernel acknowledged our subscription (it has been in force since open() returned). */
  on(event: 'subscribed', listener: () => void): this;
  /** A datagram that could not be decoded (a ProcEventDecodeError); the monitor keeps going. */
  on(event: 'warning', listener: (e: Error) => void): this;
  /** The socket failed, or the kernel refused the subscription (ProcEventSubscribeError); the monitor is closed. */
  on(event: 'error', listener: (e: Error) => void): this;
}

/**
 * Fork, exec and exit of every process on the machine, from the process events connector, on a
 * nonblocking socket read when the addon's poller reports it readable (no timers: idle costs
 * nothing). Each event is emitted twice: under its kind ('fork', ...) and under 'event'.
 */
export class ProcEventMonitor extends EventEmitter {
  private poller: Poller | undefined;
  private closed = false;
  /** LISTEN was sent and not refused: close() must say IGNORE (6.1 keeps one global listener count, which an IGNORE without LISTEN would lower). */
  private listening = false;
  private acked = false;
  /** A loss was reported; 'overrun' waits until what was queued before it has been emitted. */
  private lost = false;

  private constructor(
    private readonly nb: NativeBinding,
    readonly fd: number,
    readonly portId: number,
    private readonly batch: number,
  ) {
    super();
  }

  /** Whether the kernel has acknowledged the subscription. */
  get subscribed(): boolean {
    return this.acked;
  }

  static open(opts: ProcEventMonitorOptions = {}): ProcEventMonitor {
    const nb = opts.binding ?? native();
    if (opts.binding === undefined) checkNamespaces();
    const fd = opts.netnsFd === undefined
      ? nb.socket(AF_NETLINK, SOCK_RAW, NETLINK_CONNECTOR, true)
      : nb.socketInNetns(opts.netnsFd, AF_NETLINK, SOCK_RAW, NETLINK_CONNECTOR, true);
    let m: ProcEventMonitor;
    try {
      const rcvbuf = opts.rcvbuf ?? DEFAULT_RCVBUF;
      if (rcvbuf > 0) {
        try {
          nb.setsockoptInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf);
        } catch {
          nb.setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf);
        }
      }
      let portId: number;
      try {
        portId = nb.bindNetlink(fd, 1 << (CN_IDX_PROC - 1));
      } catch (e) {
        const { code, errno } = errnoOf(e);
        if (code === 'EPERM') {
          throw new ProcEventSubscribeError('process events: joining the connector group needs CAP_NET_ADMIN on this kernel', code, errno, e);
        }
        throw e;
      }
      m = new ProcEventMonitor(nb, fd, portId, Math.max(1, opts.batch ?? DEFAULT_BATCH));
      m.send('listen');
      m.listening = true;
    } catch (e) {
      nb.close(fd);
      throw e;
    }
    m.poller = nb.poll(fd, (err, readable) => m.onPoll(err, readable));
    m.poller.start(true, false);
    return m;
  }

  /** Unsubscribes (when subscribed) and closes the socket; no events after it returns. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.poller?.close();
    this.poller = undefined;
    if (this.listening) {
      this.listening = false;
      try {
        this.send('ignore');
      } catch {
        // The socket goes anyway. On 6.1 the listener count then stays raised: the kernel keeps
        // building events nobody reads (a cost, not a leak of ours to mend).
      }
    }
    this.nb.close(this.fd);
  }

  /**
   * cn_msg.ack carries our port id: acks are multicast to every listener and the kernel overwrites
   * cn_msg.seq, so the echoed ack (+1) is what tells our ack from others'.
   */
  private send(op: 'listen' | 'ignore'): void {
    const req = encodeProcSubscription(op, { seq: op === 'listen' ? 1 : 2, ack: this.portId, portId: this.portId });
    let sent: number;
    try {
      sent = this.nb.sendmsg(this.fd, req, undefined, 0);
    } catch (e) {
      const { code, errno } = errnoOf(e);
      if (code === 'ECONNREFUSED') {
        throw new ProcEventSubscribeError('process events: the connector exists only in the initial network namespace', code, errno, e);
      }
      throw e;
    }
    if (sent !== req.length) throw new ProcEventSubscribeError(`process events: ${op} request not sent (${sent} of ${req.length} bytes)`, 'EAGAIN', undefined);
  }

  private fail(e: unknown): void {
    this.close();
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  private onAck(ack: number, err: number): void {
    if (ack !== ((this.portId + 1) >>> 0) || this.acked) return; // another listener's
    if (err !== 0) {
      this.listening = false; // refused: the kernel counted nothing to take back
      const code = errnoCode(err);
      return this.fail(new ProcEventSubscribeError(`process events: the kernel refused the subscription: ${code}`, code, err));
    }
    this.acked = true;
    this.emit('subscribed');
  }

  private onPoll(err: Error | null, readable: boolean): void {
    if (this.closed) return;
    if (err) {
      if (errnoOf(err).code !== 'ENOBUFS') return this.fail(err);
      this.lost = true;
      // The poller stops itself on an error: watch again, then read what is queued.
      this.poller?.start(true, false);
      readable = true;
    }
    if (!readable) return;
    // A bounded number per callback, so that a fork storm leaves the loop to timers and other
    // sockets in between; the poller is level-triggered and calls again.
    for (let n = 0; n < this.batch; n++) {
      let r: RecvResult | null;
      try {
        r = this.nb.recvmsg(this.fd, RECV_BYTES, 0);
      } catch (e) {
        if (errnoOf(e).code === 'ENOBUFS') {
          this.lost = true;
          continue;
        }
        return this.fail(e);
      }
      if (r === null) {
        // Drained: the kernel delivers again from here on (it drops everything while a netlink
        // socket is congested, until its queue is empty), so this is where the loss sits.
        if (this.lost) {
          this.lost = false;
          this.emit('overrun');
        }
        return;
      }
      if (r.senderPortId !== undefined && r.senderPortId !== 0) continue;
      if (r.truncated) {
        this.lost = true;
        continue;
      }
      let events: ProcEvent[];
      try {
        events = decodeProcEvents(r.data);
      } catch (e) {
        this.emit('warning', e);
        if (this.closed) return;
        continue;
      }
      for (const ev of events) {
        if (ev.kind === 'ack') this.onAck(ev.ack, ev.err);
        else {
          this.emit(ev.kind, ev);
          if (this.closed) return;
          this.emit('event', ev);
        }
        if (this.closed) return;
      }
    }
  }
}
