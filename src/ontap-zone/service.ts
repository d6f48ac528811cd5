/**
 * ontap-zone as a service: RtnlWatch (one socket) -> ZoneWatcher -> ZoneModel; on change, after the
 * burst, publish() -> render() -> ZoneWriter (atomic write, --exec).
 *
 * Coalescing: a change schedules a write for when the socket has been drained (setImmediate runs
 * after the poll callback that read the burst); what arrives during a write (they are synchronous)
 * waits in the socket and goes into the next one. minIntervalMs can space writes further.
 * While dumps run (a new namespace, a resync) the write waits for them, at most maxHoldMs after the
 * first unwritten change; nothing is written before the initial sync has completed.
 */
import { closeSync, openSync, constants as fsConstants } from 'node:fs';
import type { Logger } from '../common/log.js';
import { RouteSocket } from '../netns/route-socket.js';
import type { NativeBinding } from '../native/index.js';
import { ZoneModel } from './model.js';
import { PublishCache, problemKey, publish, type NameSource, type Problem, type Publication, type Workload } from './publish.js';
import { RtnlWatch } from './rtnl-watch.js';
import { RenderCache, render, type ZoneConfig } from './tinydns.js';
import { ZoneWatcher } from './watcher.js';
import { ZoneWriter } from './writer.js';
import type { MdnsService } from './mdns.js';

export interface ZoneServiceOptions {
  zone: ZoneConfig;
  /** The tinydns-data file; undefined: none (mDNS only). */
  output: string | undefined;
  /** The mDNS responders (--mdns), kept in step with every change. */
  mdns?: MdnsService | undefined;
  /** --names (default both). */
  names?: NameSource;
  /** The host names of the UTS namespaces related to each namespace (--names hostname|both). */
  hostnames?: HostnameSource | undefined;
  exec?: string | undefined;
  /** Netlink receive buffer (bytes). */
  rcvbuf?: number | undefined;
  /** Addresses one workload publishes at most (default DEFAULT_MAX_ADDRESSES). */
  maxAddresses?: number | undefined;
  /** Least time between two writes (default 0: a burst read in one go is one write anyway). */
  minIntervalMs?: number;
  /** Longest a change waits for running dumps before it is written anyway (default 1000 ms). */
  maxHoldMs?: number;
  binding?: NativeBinding;
  /** Tests: where our own namespace's nsid comes from (default: RTM_GETNSID of /proc/self/ns/net). */
  selfNsid?: () => number | undefined;
  /** The netlink socket failed for good (the service has stopped). */
  onFatal?: (e: Error) => void;
}

/** What uts-tracker.ts offers the service. */
export interface HostnameSource {
  /** Raw host names per nsid, sorted. */
  hostnames(): ReadonlyMap<number, readonly string[]>;
  /** Look at /proc again soon (namespaces or links appeared). */
  rescan(): void;
  /** Look at /proc again now (before the first file). */
  scanNow(): void;
}

/** The zone file could not be written (the first time: later failures are retried). */
export class ZoneWriteError extends Error {
  override readonly name = 'ZoneWriteError';
}

/** Kept latencies (event to renamed file), for the bench and the stop line. */
const LAG_SAMPLES = 4096;
const WRITE_RETRY_MS = 1000;
/**
 * A workload over --max-addresses is logged when it goes over; the same workload again at most
 * once per CAPPED_LOG_MS (one that hovers around the cap would log every change), and all of them
 * together at most CAPPED_LOG_BURST lines per CAPPED_LOG_MS (the rest are counted in the next line).
 */
const CAPPED_LOG_MS = 60_000;
const CAPPED_LOG_BURST = 10;

export class ZoneService {
  readonly model: ZoneModel;
  readonly watch: RtnlWatch;
  readonly watcher: ZoneWatcher;
  readonly writer: ZoneWriter | undefined;
  private readonly reserved: Set<string>;
  private dirtySince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private lastWrite = 0;
  private stopped = false;
  private problems = new Map<string, Problem>();
  /** Workloads capped in the last publication (nsid, name). */
  private cappedNow = new Set<string>();
  /** When each workload's capped line was last logged. */
  private cappedLogged = new Map<string, number>();
  private cappedLines: number[] = [];
  private cappedSuppressed = 0;
  private firstSync: { resolve: () => void; reject: (e: Error) => void; promise: Promise<void> };
  /** Milliseconds from the first change of a burst to its file being in place. */
  readonly lags: number[] = [];
  lastPublication: Publication | undefined;
  private readonly publishCache = new PublishCache();
  private readonly renderCache = new RenderCache();

  constructor(private readonly opts: ZoneServiceOptions, private readonly log: Logger) {
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
    this.firstSync = { resolve, reject, promise };
    this.model = new ZoneModel({ maxAddresses: opts.maxAddresses });
    const { domain, nameServer } = opts.zone;
    this.reserved = new Set(['lan', 'wan']);
    if (nameServer.endsWith(`.${domain}`) && !nameServer.slice(0, -domain.length - 1).includes('.')) this.reserved.add(nameServer.slice(0, -domain.length - 1));
    this.writer = opts.output === undefined ? undefined : new ZoneWriter(opts.output, opts.exec, log);
    this.watch = RtnlWatch.open({
      event: (e) => this.watcher.onEvent(e),
      overrun: () => this.watcher.onEvent({ type: 'overrun', nsid: undefined }),
      idle: () => this.onIdle(),
      error: (e) => this.fail(e),
      warning: (e) => log.warn('undecodable-event', { error: e.message }),
    }, { rcvbuf: opts.rcvbuf, binding: opts.binding });
    this.watcher = new ZoneWatcher(this.watch, this.model, log, {
      selfNsid: () => this.selfNsid(),
      changed: () => this.changed(),
      synced: (p) => this.synced(p),
    });
  }

  /** RTM_GETNSID for /proc/self/ns/net, on a short-lived RouteSocket (a request, not a dump). */
  private selfNsid(): number | undefined {
    if (this.opts.selfNsid) return this.opts.selfNsid();
    this.self ??= { fd: openSync('/proc/self/ns/net', fsConstants.O_RDONLY), rtnl: RouteSocket.open({ binding: this.opts.binding }) };
    return this.self.rtnl.getNsid(this.self.fd);
  }

  private self: { fd: number; rtnl: RouteSocket } | undefined;

  /** The mDNS responders, with --mdns. */
  get mdns(): MdnsService | undefined {
    return this.opts.mdns;
  }

  /** Starts watching; resolves once the initial sync is written (and its --exec has run). */
  start(): Promise<void> {
    this.watcher.start();
    return this.firstSync.promise;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    if (this.mdnsImmediate) clearImmediate(this.mdnsImmediate);
    this.opts.mdns?.stop();
    this.watcher.stop();
    this.watch.close();
    if (this.self) {
      this.self.rtnl.close();
      closeSync(this.self.fd);
      this.self = undefined;
    }
  }

  /** SIGHUP: dump everything again (the file is rewritten if that changes it) and run --exec. */
  resync(reason: string): void {
    this.forceExec = true;
    this.watcher.fullSync(reason);
  }

  private forceExec = false;

  private fail(e: Error): void {
    this.log.error('netlink-failed', { error: e.message });
    this.stop();
    this.firstSync.reject(e);
    this.opts.onFatal?.(e);
  }

  private changed(): void {
    const h = this.opts.hostnames;
    if (h && this.model.structure !== this.structureSeen) {
      // New namespaces or links: processes may have joined; and a new namespace takes the host
      // names already known for its nsid.
      this.structureSeen = this.model.structure;
      h.rescan();
      this.applyHostnames();
    }
    this.dirtySince ??= performance.now();
    this.schedule();
    this.scheduleMdns();
  }

  private structureSeen = -1;

  /** The tracker's host names into the model; true if any namespace's changed. */
  private applyHostnames(): boolean {
    const h = this.opts.hostnames;
    if (!h) return false;
    const names = h.hostnames();
    let moved = false;
    for (const [nsid, ns] of this.model.namespaces) {
      const now = names.get(nsid) ?? [];
      if (now.length === 0 && ns.hostnames.length === 0) continue;
      moved = this.model.setHostnames(nsid, now) || moved;
    }
    return moved;
  }

  /** The tracker's callback: host names or their relations changed. */
  hostnamesChanged(): void {
    if (this.stopped || !this.applyHostnames()) return;
    this.dirtySince ??= performance.now();
    this.schedule();
    this.scheduleMdns();
  }

  private mdnsImmediate: NodeJS.Immediate | undefined;

  /**
   * The responders follow every change at once, not after the dumps the file waits for: a goodbye
   * must go out while ontapd's release still leaves the device there (the model is never emptied
   * while a dump runs, so what it says meanwhile is never less than the truth).
   */
  private scheduleMdns(): void {
    if (!this.opts.mdns || this.stopped || !this.watcher.initialSyncDone || this.mdnsImmediate) return;
    this.mdnsImmediate = setImmediate(() => {
      this.mdnsImmediate = undefined;
      if (this.stopped) return;
      this.opts.mdns!.reconcile(this.model, publish(this.model, { domain: this.opts.zone.domain, reserved: this.reserved, names: this.opts.names }, this.publishCache));
    });
  }

  private synced(p: { number: number; namespaces: number; ms: number; reason: string }): void {
    this.log.info(p.number === 1 ? 'synced' : 'resynced', { pass: p.number, reason: p.reason, namespaces: p.namespaces, ms: p.ms, dumps: this.watch.stats.dumps });
    this.scheduleMdns();
    if (p.number === 1) {
      // The first file has the host names of the namespaces as they are now.
      this.opts.hostnames?.scanNow();
      this.applyHostnames();
      // The first file: written even if nothing is known (an empty zone is still a zone).
      this.dirtySince ??= performance.now();
      this.forceExec = true;
      this.flush(true);
      return;
    }
    // SIGHUP promised an --exec run even if the resync changed nothing.
    if (this.forceExec) this.dirtySince ??= performance.now();
    this.schedule();
  }

  private onIdle(): void {
    // Dumps are over: a write held back for them may go now.
    if (this.timer && this.dirtySince !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || !this.watcher.initialSyncDone || this.dirtySince === undefined) return;
    if (this.timer || this.immediate) return;
    const now = performance.now();
    let at = Math.max(now, this.lastWrite + (this.opts.minIntervalMs ?? 0));
    if (this.watcher.busy) at = Math.max(at, this.dirtySince + (this.opts.maxHoldMs ?? 1000));
    if (at <= now) {
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        this.flush();
      });
    } else {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, Math.ceil(at - now));
    }
  }

  /** Renders and writes (if that changes the file); unless `now`, waits for running dumps first. */
  flush(now = false): void {
    if (this.stopped || this.dirtySince === undefined) return;
    if (!now && this.watcher.busy && performance.now() < this.dirtySince + (this.opts.maxHoldMs ?? 1000)) {
      this.schedule();
      return;
    }
    const since = this.dirtySince;
    const flushStart = performance.now();
    const pub = publish(this.model, { domain: this.opts.zone.domain, reserved: this.reserved, names: this.opts.names }, this.publishCache);
    this.lastPublication = pub;
    this.report(pub.problems);
    this.reportCapped(pub.workloads);
    if (this.writer === undefined) {
      // mDNS only: nothing to write.
      this.dirtySince = undefined;
      this.lastWrite = performance.now();
      if (this.forceExec) {
        this.forceExec = false;
        this.firstSync.resolve();
      }
      return;
    }
    const writer = this.writer;
    const rendering = performance.now();
    const text = render(pub, this.opts.zone, this.renderCache);
    const writing = performance.now();
    let wrote: boolean;
    try {
      wrote = writer.write(text);
    } catch (e) {
      if (this.lastWrite === 0) {
        // The first write: a file that cannot be written at all is a configuration error.
        this.log.error('write-failed', { file: this.opts.output, error: (e as Error).message });
        this.firstSync.reject(new ZoneWriteError(`${this.opts.output}: ${(e as Error).message}`));
        return;
      }
      this.log.error('write-failed', { file: this.opts.output, error: (e as Error).message, retry_ms: WRITE_RETRY_MS });
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush(true);
      }, WRITE_RETRY_MS);
      return;
    }
    this.dirtySince = undefined;
    const done = performance.now();
    this.lastWrite = done;
    const lag = done - since;
    if (wrote) {
      this.lags.push(lag);
      if (this.lags.length > LAG_SAMPLES) this.lags.splice(0, this.lags.length - LAG_SAMPLES);
      this.log.debug('wrote', { file: this.opts.output, bytes: Buffer.byteLength(text), workloads: pub.workloads.length, lag_ms: lag.toFixed(2), flush_ms: (done - flushStart).toFixed(2), publish_ms: (rendering - flushStart).toFixed(2), render_ms: (writing - rendering).toFixed(2), write_ms: (done - writing).toFixed(2) });
    }
    const first = this.forceExec;
    this.forceExec = false;
    if (wrote || first) {
      void writer.runExec().then(() => {
        if (first) this.firstSync.resolve();
      });
    } else if (first) {
      this.firstSync.resolve();
    }
  }

  /** Logs a workload going over --max-addresses (rate-limited: see CAPPED_LOG_MS). */
  private reportCapped(workloads: Workload[]): void {
    const now = performance.now();
    const capped = new Set<string>();
    for (const w of workloads) {
      if (!w.capped) continue;
      const key = `${w.nsid}\0${w.name}`;
      capped.add(key);
      if (this.cappedNow.has(key)) continue;
      const last = this.cappedLogged.get(key);
      if (last !== undefined && now - last < CAPPED_LOG_MS) continue;
      while (this.cappedLines.length > 0 && now - this.cappedLines[0]! >= CAPPED_LOG_MS) this.cappedLines.shift();
      if (this.cappedLines.length >= CAPPED_LOG_BURST) {
        this.cappedSuppressed++;
        continue;
      }
      this.cappedLines.push(now);
      this.cappedLogged.set(key, now);
      this.log.warn('addresses-capped', {
        name: w.name, nsid: w.nsid, where: w.links.map((l) => `${w.nsid}/${l.ifname}`).join(','),
        limit: this.model.maxAddresses,
        suppressed: this.cappedSuppressed > 0 ? this.cappedSuppressed : undefined,
      });
      this.cappedSuppressed = 0;
    }
    this.cappedNow = capped;
    for (const [key, at] of this.cappedLogged) if (now - at >= CAPPED_LOG_MS) this.cappedLogged.delete(key);
  }

  /** Logs each withheld name once when it appears and once when it is resolved. */
  private report(problems: Problem[]): void {
    const now = new Map(problems.map((p) => [problemKey(p), p]));
    for (const [key, p] of now) {
      if (this.problems.has(key)) continue;
      this.log.warn('name-withheld', { reason: p.kind, name: p.name, where: p.where.join(','), detail: p.detail });
    }
    for (const [key, p] of this.problems) {
      if (!now.has(key)) this.log.info('name-released', { reason: p.kind, name: p.name, where: p.where.join(',') });
    }
    this.problems = now;
  }
}
