/**
 * Keeps the model equal to the kernel: the initial dump of every namespace that has an nsid, then
 * events; a namespace's dumps when it gets an nsid; forgetting it when its nsid goes; a full resync
 * after an overrun. Dumps run on the watch's own socket, so records and events apply in the kernel's
 * order (see rtnl-watch.ts and model.ts for why that converges).
 */
import type { RouteEvent } from '../netns/route-monitor.js';
import type { DumpJob, DumpOutcome } from './rtnl-watch.js';
import type { ZoneModel } from './model.js';

/** What the watcher needs of RtnlWatch (tests give it a fake). */
export interface DumpQueue {
  enqueue(job: DumpJob): void;
  queued(): readonly DumpJob[];
  readonly pending: number;
}

export interface WatcherLog {
  debug(event: string, fields?: Record<string, string | number | boolean | undefined>): void;
  info(event: string, fields?: Record<string, string | number | boolean | undefined>): void;
  warn(event: string, fields?: Record<string, string | number | boolean | undefined>): void;
}

export interface WatcherHooks {
  /**
   * Our own namespace's nsid in our namespace, if it has one (RTM_GETNSID of /proc/self/ns/net).
   * The kernel gives it one the first time it reports a link whose parent is here (a macvlan of
   * ontapd's uplink, IFLA_LINK_NETNSID): from then on our own events carry that nsid.
   */
  selfNsid(): number | undefined;
  /** The model changed in a way that can change the published file. */
  changed(): void;
  /** A sync pass (the initial one, or a resync after an overrun) has dumped everything it covers. */
  synced(pass: { number: number; namespaces: number; ms: number; reason: string }): void;
}

/** Interrupted dumps are retried at once this many times, then after RETRY_DELAY_MS each. */
export const IMMEDIATE_RETRIES = 5;
export const RETRY_DELAY_MS = 50;
/** Re-dumps of one namespace because events overlapped its dump, at most (then events alone keep it right). */
export const MAX_OVERLAP_REDUMPS = 3;
/** An nsid dump this long may have been cut short by the kernel (see probeAbove). */
export const PROBE_SUSPECT = 100;
/** Probing for nsids above a cut-short dump stops after this many absent ids in a row. */
export const PROBE_MISSES = 64;

interface Pass {
  number: number;
  reason: string;
  started: number;
  /** Jobs of this pass not finished yet (the nsid dump, then two per namespace). */
  outstanding: number;
  namespaces: number;
}

type NsJobKind = 'links' | 'addresses';

export class ZoneWatcher {
  private passes = 0;
  private pass: Pass | undefined;
  /** A resync was asked for while a pass ran: start another when it ends. */
  private resyncAgain: string | undefined;
  /** nsid -> job kind -> events of that kind seen while its dump ran (see runNamespaceJob). */
  private readonly overlap = new Map<number, Map<NsJobKind, number>>();
  private timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  /** True once the first pass has completed. */
  initialSyncDone = false;
  readonly stats = { resyncs: 0, redumps: 0, retries: 0, forgotten: 0, probes: 0 };

  constructor(
    private readonly dumps: DumpQueue,
    private readonly model: ZoneModel,
    private readonly log: WatcherLog,
    private readonly hooks: WatcherHooks,
  ) {}

  start(): void {
    this.fullSync('start');
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Whether any dump is queued or running (the writer waits for quiet before writing). */
  get busy(): boolean {
    return this.dumps.pending > 0 || this.pass !== undefined || this.timers.size > 0;
  }

  private after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(t);
  }

  /** Everything again: the nsid list, then every namespace's links and addresses. */
  fullSync(reason: string): void {
    if (this.stopped) return;
    if (this.pass) {
      // Events lost during this pass may concern namespaces it already dumped: one more pass after it.
      this.resyncAgain = reason;
      return;
    }
    const pass: Pass = { number: ++this.passes, reason, started: Date.now(), outstanding: 1, namespaces: 0 };
    this.pass = pass;
    if (pass.number > 1) this.stats.resyncs++;
    this.runNsidDump(pass, 0);
  }

  private endPassJob(pass: Pass): void {
    if (--pass.outstanding > 0) return;
    if (this.pass !== pass) return;
    this.pass = undefined;
    const ms = Date.now() - pass.started;
    if (!this.initialSyncDone) this.initialSyncDone = true;
    this.hooks.synced({ number: pass.number, namespaces: pass.namespaces, ms, reason: pass.reason });
    const again = this.resyncAgain;
    this.resyncAgain = undefined;
    if (again !== undefined) this.fullSync(again);
  }

  private runNsidDump(pass: Pass, attempt: number): void {
    let since = 0;
    const seen: number[] = [];
    this.dumps.enqueue({
      what: 'nsids',
      onStart: () => {
        since = this.model.tick;
      },
      onRecord: (nsid) => {
        seen.push(nsid);
        if (this.isOwn(nsid)) return;
        this.model.touchNamespace(nsid);
      },
      onEnd: (o) => {
        if (!o.ok) {
          this.retry('nsids', o, attempt, () => this.runNsidDump(pass, attempt + 1));
          return;
        }
        const finish = (found: number[]): void => {
          for (const nsid of this.model.sweepNamespaces(since)) this.forgotten(nsid, 'not in the nsid dump');
          const probed = new Set(found);
          const all = [...new Set([...seen, ...found])].filter((n) => !this.isOwn(n));
          pass.namespaces = all.length;
          for (const nsid of all) {
            // Still there (a delnsid may have come in after the record)?
            if (!this.model.namespaces.has(nsid)) continue;
            // A probed namespace's links were dumped (and swept) by its probe.
            if (!probed.has(nsid)) {
              pass.outstanding++;
              this.runNamespaceJob(nsid, 'links', 0, () => this.endPassJob(pass));
            }
            pass.outstanding++;
            this.runNamespaceJob(nsid, 'addresses', 0, () => this.endPassJob(pass));
          }
          this.endPassJob(pass);
        };
        if (seen.length < PROBE_SUSPECT) finish([]);
        else this.probeAbove(Math.max(...seen) + 1, finish);
      },
    });
  }

  /**
   * Linux 6.18's RTM_GETNSID dump stops after its first batch when NLMSG_DONE still fits in it
   * (rtnl_net_dumpid returns 0, not skb->len): 134 nsids in the first 4 KiB batch of a socket, about
   * 1170 in 32 KiB ones; `ip netns list-id` shows the same truncation. Records come in ascending id
   * order and ids are allocated lowest-free, so what is missing is the ids above the last one: probe
   * them with link dumps (EINVAL: no such nsid) until PROBE_MISSES in a row are absent. Found ones are
   * then dumped like the others; explicitly numbered ones far above are learnt from their first event.
   */
  private probeAbove(from: number, done: (found: number[]) => void): void {
    const found: number[] = [];
    let misses = 0;
    let next = from;
    this.stats.probes++;
    const step = (): void => {
      if (this.stopped) return;
      if (misses >= PROBE_MISSES) {
        this.log.debug('nsid-probe', { from, found: found.length });
        done(found);
        return;
      }
      const nsid = next++;
      if (this.isOwn(nsid)) {
        misses = 0;
        step();
        return;
      }
      const known = this.model.namespaces.has(nsid);
      this.model.touchNamespace(nsid);
      let since = 0;
      let version = 0;
      this.dumps.enqueue({
        what: 'links',
        nsid,
        onStart: () => {
          since = this.model.tick;
          version = this.model.changes;
        },
        onRecord: (link) => this.model.upsertLink(nsid, link),
        onEnd: (o) => {
          if (!o.ok && !o.interrupted && (o.error as { code?: string }).code === 'EINVAL') {
            misses++;
            this.model.removeNamespace(nsid);
            if (known) this.forgotten(nsid, 'EINVAL on probe');
            step();
            return;
          }
          misses = 0;
          if (o.ok) {
            // A complete link dump: it stands for the namespace's link dump in this pass.
            this.model.sweepLinks(nsid, since);
            if (this.model.changes !== version) this.hooks.changed();
            found.push(nsid);
            step();
            return;
          }
          // Exists, but the dump was cut short: a regular (retried) link dump follows.
          this.runNamespaceJob(nsid, 'links', 0, () => {});
          found.push(nsid);
          step();
        },
      });
    };
    step();
  }

  private forgotten(nsid: number, why: string): void {
    this.stats.forgotten++;
    this.overlap.delete(nsid);
    this.log.debug('namespace-forgotten', { nsid, why });
    this.hooks.changed();
  }

  /** Dumps one namespace's links and addresses unless such dumps are already queued. */
  dumpNamespace(nsid: number, why: string): void {
    this.log.debug('namespace-dump', { nsid, why });
    for (const kind of ['links', 'addresses'] as const) {
      const already = this.dumps.queued().some((j) => j.what === kind && j.nsid === nsid);
      if (!already) this.runNamespaceJob(nsid, kind, 0, () => {});
    }
  }

  private runNamespaceJob(nsid: number, kind: NsJobKind, attempt: number, done: () => void, redumps = 0): void {
    let since = 0;
    let version = 0;
    const end = (o: DumpOutcome): void => {
      const overlapping = this.overlap.get(nsid)?.get(kind) ?? 0;
      this.overlap.get(nsid)?.delete(kind);
      if (!this.model.namespaces.has(nsid)) {
        // Its nsid went meanwhile: nothing to keep.
        done();
        return;
      }
      if (!o.ok) {
        if (!o.interrupted && (o.error as { code?: string }).code === 'EINVAL') {
          // "Invalid target network namespace id": the namespace went (its delnsid is on its way, or
          // came before a stale nsid record brought it back).
          this.log.debug('namespace-vanished', { nsid, kind });
          if (this.model.removeNamespace(nsid)) this.forgotten(nsid, 'EINVAL on dump');
          done();
          return;
        }
        this.retry(`${kind} of nsid ${nsid}`, o, attempt, () => this.runNamespaceJob(nsid, kind, attempt + 1, done, redumps));
        return;
      }
      const swept = kind === 'links' ? this.model.sweepLinks(nsid, since) : this.model.sweepAddresses(nsid, since);
      if (swept > 0) this.log.debug('swept', { nsid, kind, entries: swept });
      if (this.model.changes !== version) this.hooks.changed();
      if (overlapping > 0 && redumps < MAX_OVERLAP_REDUMPS) {
        // Events of this kind came in while the dump ran: a record read after such an event may have
        // been filled before the change it announces (dumps run under RCU). Once more, to be sure.
        this.stats.redumps++;
        this.runNamespaceJob(nsid, kind, 0, done, redumps + 1);
        return;
      }
      done();
    };
    const onStart = (): void => {
      since = this.model.tick;
      version = this.model.changes;
      let byKind = this.overlap.get(nsid);
      if (!byKind) this.overlap.set(nsid, (byKind = new Map()));
      byKind.set(kind, 0);
    };
    // Records of a namespace forgotten while its dump runs are dropped (the model never recreates one).
    if (kind === 'links') {
      this.dumps.enqueue({ what: 'links', nsid, onStart, onRecord: (link) => this.model.upsertLink(nsid, link), onEnd: end });
    } else {
      this.dumps.enqueue({ what: 'addresses', nsid, onStart, onRecord: (a) => this.model.upsertAddress(nsid, a), onEnd: end });
    }
  }

  private retry(what: string, o: Exclude<DumpOutcome, { ok: true }>, attempt: number, again: () => void): void {
    this.stats.retries++;
    const reason = o.interrupted ? 'NLM_F_DUMP_INTR' : o.error.message;
    if (attempt < IMMEDIATE_RETRIES) {
      this.log.debug('dump-retry', { what, attempt: attempt + 1, reason });
      again();
      return;
    }
    // Keeps changing (or keeps failing): back off, but never give up on a namespace we still know.
    this.log.warn('dump-retry', { what, attempt: attempt + 1, reason, delay_ms: RETRY_DELAY_MS });
    this.after(RETRY_DELAY_MS, again);
  }

  private noteOverlap(nsid: number, kind: NsJobKind): void {
    const byKind = this.overlap.get(nsid);
    const n = byKind?.get(kind);
    if (n !== undefined) byKind!.set(kind, n + 1);
  }

  private self: number | undefined;
  /** Ask the kernel for our self-id before trusting `self` (at start, and after each newnsid here). */
  private selfStale = true;

  /**
   * Whether nsid is our own namespace (or undefined: an event from it before it had a self-id).
   * A self-id, once assigned, never changes while we live; its assignment is a RTM_NEWNSID here.
   */
  private isOwn(nsid: number | undefined): boolean {
    if (nsid === undefined) return true;
    if (this.self === undefined && this.selfStale) {
      this.self = this.hooks.selfNsid();
      this.selfStale = false;
    }
    return nsid === this.self;
  }

  /** Every notification, in socket order. */
  onEvent(e: RouteEvent): void {
    if (this.stopped) return;
    switch (e.type) {
      case 'newnsid':
      case 'delnsid': {
        // Only ids in OUR namespace matter; other namespaces' nsid tables come with their own nsid.
        if (!this.isOwn(e.nsid) || e.nsidValue === undefined) return;
        const nsid = e.nsidValue;
        if (e.type === 'newnsid') this.selfStale = true;
        if (this.isOwn(nsid)) return;
        if (e.type === 'newnsid') {
          this.model.touchNamespace(nsid);
          this.dumpNamespace(nsid, 'newnsid');
        } else if (this.model.removeNamespace(nsid)) {
          this.forgotten(nsid, 'delnsid');
        }
        return;
      }
      case 'overrun':
        this.log.warn('overrun', { action: 'resync' });
        this.fullSync('overrun');
        return;
      default:
        break;
    }
    const nsid = e.nsid;
    // Our own namespace is not watched: workloads live in namespaces ontapd gave an nsid.
    if (nsid === undefined) return;
    if (!this.model.namespaces.has(nsid) && this.isOwn(nsid)) return;
    if (!this.model.namespaces.has(nsid)) {
      // An nsid we missed the announcement of (or saw before the delnsid it is about to get): learn it.
      this.model.touchNamespace(nsid);
      this.dumpNamespace(nsid, `${e.type} from an unknown nsid`);
    }
    const before = this.model.changes;
    switch (e.type) {
      case 'newlink':
        this.noteOverlap(nsid, 'links');
        this.model.upsertLink(nsid, e.link);
        break;
      case 'dellink':
        this.noteOverlap(nsid, 'links');
        this.noteOverlap(nsid, 'addresses');
        this.model.deleteLink(nsid, e.link.ifindex);
        break;
      case 'newaddr':
        this.noteOverlap(nsid, 'addresses');
        this.model.upsertAddress(nsid, e.address);
        break;
      case 'deladdr':
        this.noteOverlap(nsid, 'addresses');
        this.model.deleteAddress(nsid, e.address);
        break;
    }
    if (this.model.changes !== before) this.hooks.changed();
  }
}
