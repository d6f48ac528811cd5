/**
 * Which UTS namespaces are related to which network namespaces, and their host names, learnt from
 * events, never on a timer (ontap-zone --names hostname|both).
 *
 * A network namespace and a UTS namespace are related while some process is a member of both. The
 * tracker knows every process's pair (/proc/PID/ns/net and /uts, read once at start for all of
 * them, then for the processes the process events connector names: a fork's child, an exec; an
 * exit forgets one) and counts the members of each pair. A host name change anywhere rings one
 * doorbell (POLLPRI on /proc/sys/kernel/hostname, which does not say where): then the host names of
 * the UTS namespaces it follows are read again, all on one thread (the addon's utsHostnames), as a
 * token bucket allows; /proc is looked at again after that, at most once a second (a process that
 * set the name after joining with setns() or unshare() without exec'ing is seen then). A namespace
 * event (a new nsid, a link) makes it look at /proc again too, as does an overrun of the connector.
 *
 * What it follows: UTS namespaces related to a network namespace ontap-zone knows by an nsid,
 * except the host's: its own UTS namespace, and any related to its own network namespace (a
 * workload started without --uts shares the host's name, which is not the workload's). It holds
 * a descriptor of each one it follows (from one member's /proc/PID/ns/uts) while it follows it.
 */
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readlinkSync, constants as fsConstants } from 'node:fs';
import type { Logger } from '../common/log.js';
import type { NativeBinding, Poller } from '../native/index.js';
import type { NsidSource } from '../netns/netns-by-nsid.js';
import { ProcEventMonitor } from '../netns/proc-monitor.js';
import type { HostnameSource } from './service.js';

/** The "net:[4026531840]" a /proc/PID/ns link reads: the namespace's identity. */
type NsKey = string;

interface Member {
  net: NsKey;
  uts: NsKey;
}

interface Followed {
  fd: number;
  /** The raw host name (latin1: one character per byte), or undefined until read. */
  hostname: string | undefined;
  /** Reading it failed once (logged). */
  failed?: boolean;
}

export interface UtsTrackerStats {
  scans: number;
  reads: number;
  rings: number;
  overruns: number;
  processes: number;
  followed: number;
}

function nsKeys(pid: number): Member | undefined {
  try {
    return { net: readlinkSync(`/proc/${pid}/ns/net`), uts: readlinkSync(`/proc/${pid}/ns/uts`) };
  } catch {
    return undefined; // gone, a kernel thread, or not ours to read
  }
}

/** /proc/PID/ns/net of our parent, its parent, ... (the nearest first). */
function* ancestorNetns(): Generator<string> {
  let pid = process.ppid;
  for (let depth = 0; depth < 64 && pid > 1; depth++) {
    yield `/proc/${pid}/ns/net`;
    try {
      pid = Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      return;
    }
  }
}

/** The inode in "uts:[4026531838]". */
function inodeOf(key: NsKey): number {
  return Number(/\[(\d+)\]/.exec(key)?.[1] ?? -1);
}

/** UTS namespaces followed per network namespace at most (each holds a descriptor, each may be a name). */
export const MAX_UTS_PER_NAMESPACE = 16;
/**
 * Reads of every followed name the doorbell causes: RING_READ_BURST at once, then one per
 * RING_READ_EVERY_MS, so a workload setting its name in a loop costs a bounded share of a core
 * (each read that finds a new name also rewrites the file).
 */
const RING_READ_BURST = 30;
const RING_READ_EVERY_MS = 100;
/** /proc scans the doorbell causes: at most one per so many ms. */
const RING_SCAN_GAP_MS = 1000;

export class UtsTracker implements HostnameSource {
  /** Network namespaces over MAX_UTS_PER_NAMESPACE (logged once each). */
  private readonly capped = new Set<NsKey>();
  private readonly members = new Map<number, Member>();
  /** net -> uts -> how many processes are in both. */
  private readonly pairs = new Map<NsKey, Map<NsKey, number>>();
  /** net -> its nsid in our namespace; null: it has none (yet). */
  private readonly nsidOf = new Map<NsKey, number | null>();
  private readonly followed = new Map<NsKey, Followed>();
  private readonly selfNet: NsKey;
  private readonly selfUts: NsKey;
  private doorbell: { fd: number; poller: Poller } | undefined;
  private monitor: ProcEventMonitor | undefined;
  private published = new Map<number, string[]>();
  readonly stats: UtsTrackerStats = { scans: 0, reads: 0, rings: 0, overruns: 0, processes: 0, followed: 0 };

  constructor(
    private readonly nb: NativeBinding,
    private readonly nsids: NsidSource,
    private readonly log: Logger,
    /** The host names per nsid changed (hostnames() has the new ones). */
    private readonly changed: () => void,
  ) {
    this.selfNet = readlinkSync('/proc/self/ns/net');
    this.selfUts = readlinkSync('/proc/self/ns/uts');
  }

  /** Opens the doorbell (not for --once). /proc is read when the service asks (scanNow, before its first file). */
  start(): void {
    const fd = openSync('/proc/sys/kernel/hostname', fsConstants.O_RDONLY);
    const poller = this.nb.poll(fd, (err, _r, _w, priority) => {
      if (err) {
        this.log.warn('hostname-doorbell-failed', { error: err.message });
        return;
      }
      if (priority) {
        this.stats.rings++;
        this.rang();
      }
    });
    poller.start(false, false, true);
    this.doorbell = { fd, poller };
    this.openMonitor();
  }

  /**
   * The process events connector, in the initial network namespace (it refuses every other with
   * ECONNREFUSED): ours, else /proc/1's, else that of the first ancestor of ours in another one
   * (ontap-zone started by `ip netns exec`: /proc/1/ns may be closed to us even as root). Without
   * it (refused: no CAP_NET_ADMIN on 6.1, a container's pid namespace), membership changes are
   * seen only at namespace events and host name changes: said once, at warn.
   */
  private openMonitor(): void {
    const tried = new Set<string>();
    let last: unknown;
    for (const path of [undefined, '/proc/1/ns/net', ...ancestorNetns()]) {
      let fd: number | undefined;
      try {
        if (path !== undefined) {
          const key = readlinkSync(path);
          if (tried.has(key) || key === this.selfNet) continue;
          tried.add(key);
          fd = openSync(path, fsConstants.O_RDONLY);
        } else {
          tried.add(this.selfNet);
        }
        this.monitor = this.subscribe(fd);
        return;
      } catch (e) {
        last = e;
        if ((e as { code?: unknown }).code !== 'ECONNREFUSED' && path === undefined) break;
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
    }
    this.log.warn('process-events-unavailable', { error: (last as Error | undefined)?.message, effect: 'joins and exits are seen only at namespace events and host name changes' });
  }

  private subscribe(netnsFd: number | undefined): ProcEventMonitor {
    const m = ProcEventMonitor.open(netnsFd === undefined ? {} : { netnsFd });
    m.on('fork', (e: { childPid: number; childTgid: number }) => {
      if (e.childPid === e.childTgid) this.forked(e.childTgid);
    });
    m.on('exec', (e: { tgid: number }) => this.execed(e.tgid));
    m.on('exit', (e: { pid: number; tgid: number }) => {
      if (e.pid === e.tgid) this.exited(e.tgid);
    });
    m.on('overrun', () => {
      this.stats.overruns++;
      this.rescan();
    });
    m.on('warning', (e: Error) => this.log.debug('process-event-undecodable', { error: e.message }));
    m.on('error', (e: Error) => {
      this.monitor = undefined;
      this.log.warn('process-events-lost', { error: e.message, effect: 'joins and exits are seen only at namespace events and host name changes' });
    });
    return m;
  }

  stop(): void {
    this.monitor?.close();
    this.monitor = undefined;
    if (this.scanImmediate) clearImmediate(this.scanImmediate);
    this.scanImmediate = undefined;
    if (this.pending) clearImmediate(this.pending.immediate);
    this.pending = undefined;
    clearTimeout(this.ringTimer);
    this.ringTimer = undefined;
    clearTimeout(this.ringScanTimer);
    this.ringScanTimer = undefined;
    if (this.doorbell) {
      this.doorbell.poller.close();
      closeSync(this.doorbell.fd);
      this.doorbell = undefined;
    }
    for (const f of this.followed.values()) closeSync(f.fd);
    this.followed.clear();
  }

  /** The raw host names of the UTS namespaces related to each nsid's network namespace, sorted. */
  hostnames(): ReadonlyMap<number, readonly string[]> {
    return this.published;
  }

  // What the process events connector says.

  forked(childTgid: number): void {
    if (this.look(childTgid)) this.schedule(false);
  }

  execed(tgid: number): void {
    if (this.look(tgid)) this.schedule(false);
  }

  exited(tgid: number): void {
    if (!this.members.has(tgid)) return;
    this.forget(tgid);
    this.schedule(false);
  }

  private pending: { immediate: NodeJS.Immediate; readAll: boolean } | undefined;
  /** Reads of every name the doorbell may still cause at once (a token bucket), and when it was filled. */
  private ringTokens = RING_READ_BURST;
  private ringFilled = performance.now();
  private ringTimer: NodeJS.Timeout | undefined;
  /** The /proc scan a ring causes, and when the last one was. */
  private ringScanTimer: NodeJS.Timeout | undefined;
  private ringScanned = -Infinity;

  /**
   * The doorbell rang: read every followed name now (a name changed in a namespace already
   * followed), as the token bucket allows (RING_READ_BURST, then one per RING_READ_EVERY_MS; a
   * ring held back is read when a token comes, rings meanwhile with it). Whoever set the name may be
   * a process nothing told of (one that forked, joined with setns() or unshare() and set the name
   * without exec'ing): /proc is looked at too, after that read, at most once per RING_SCAN_GAP_MS
   * (a scan at 1,000 processes costs more than reading every name: off the path of a name that
   * changed in a namespace already followed).
   */
  private rang(): void {
    if (this.ringTimer === undefined) {
      const now = performance.now();
      this.ringTokens = Math.min(RING_READ_BURST, this.ringTokens + (now - this.ringFilled) / RING_READ_EVERY_MS);
      this.ringFilled = now;
      if (this.ringTokens >= 1) {
        this.ringTokens -= 1;
        this.schedule(true);
      } else {
        // Not even listening until then: every ring is a wake-up, and a loop of sethostname(2)
        // rings faster than the loop could take them. Whatever changed meanwhile is read then.
        this.doorbell?.poller.stop();
        this.ringTimer = setTimeout(() => {
          this.ringTimer = undefined;
          this.doorbell?.poller.start(false, false, true);
          this.rang();
        }, (1 - this.ringTokens) * RING_READ_EVERY_MS);
      }
    }
    if (this.ringScanTimer === undefined) {
      const wait = Math.max(0, this.ringScanned + RING_SCAN_GAP_MS - performance.now());
      this.ringScanTimer = setTimeout(() => {
        this.ringScanTimer = undefined;
        this.ringScanned = performance.now();
        this.rescan();
      }, wait);
    }
  }

  /** One refresh for a burst of events (a fork storm is one pass), after the loop has read them. */
  private schedule(readAll: boolean): void {
    if (this.pending) {
      this.pending.readAll ||= readAll;
      return;
    }
    const pending = { readAll, immediate: setImmediate(() => {
      this.pending = undefined;
      this.refresh(pending.readAll);
    }) };
    this.pending = pending;
  }

  private scanImmediate: NodeJS.Immediate | undefined;

  /** Namespaces changed (a new nsid, a link), or events were lost: look at every process again, soon (once for a burst). */
  rescan(): void {
    this.scanImmediate ??= setImmediate(() => {
      this.scanImmediate = undefined;
      this.scan();
    });
  }

  /** Processes whose namespaces the last scan could not read (kernel threads, gone, or closed to us). */
  private unreadable = 0;

  /** Looks at every process now. */
  scanNow(): void {
    if (this.scanImmediate) clearImmediate(this.scanImmediate);
    this.scanImmediate = undefined;
    this.scan();
  }

  private scan(): void {
    this.stats.scans++;
    const seen = new Set<number>();
    let names: string[] = [];
    try {
      names = readdirSync('/proc');
    } catch {
      return;
    }
    this.unreadable = 0;
    for (const n of names) {
      if (!/^\d+$/.test(n)) continue;
      const pid = Number(n);
      seen.add(pid);
      this.look(pid);
      if (!this.members.has(pid)) this.unreadable++;
    }
    for (const pid of [...this.members.keys()]) if (!seen.has(pid)) this.forget(pid);
    // Namespaces that had no nsid may have one now.
    for (const [net, nsid] of this.nsidOf) if (nsid === null) this.nsidOf.delete(net);
    this.refresh(false);
    this.log.debug('uts-scan', { processes: this.members.size, unreadable: this.unreadable, networks: this.pairs.size, mapped: [...this.nsidOf.values()].filter((n) => n !== null).length, followed: this.followed.size });
  }

  /** Reads one process's pair again; whether it changed. */
  private look(pid: number): boolean {
    const now = nsKeys(pid);
    const before = this.members.get(pid);
    if (before && now && before.net === now.net && before.uts === now.uts) return false;
    if (before) this.forget(pid);
    if (!now) return before !== undefined;
    this.members.set(pid, now);
    let m = this.pairs.get(now.net);
    if (!m) this.pairs.set(now.net, (m = new Map()));
    m.set(now.uts, (m.get(now.uts) ?? 0) + 1);
    return true;
  }

  private forget(pid: number): void {
    const m = this.members.get(pid);
    if (!m) return;
    this.members.delete(pid);
    const utss = this.pairs.get(m.net);
    const n = (utss?.get(m.uts) ?? 0) - 1;
    if (n > 0) utss!.set(m.uts, n);
    else {
      utss?.delete(m.uts);
      if (utss?.size === 0) {
        this.pairs.delete(m.net);
        this.nsidOf.delete(m.net);
        this.capped.delete(m.net);
      }
    }
  }

  /** A member's pid of the pair, for opening its namespaces. */
  private memberOf(net: NsKey, uts?: NsKey): number | undefined {
    for (const [pid, m] of this.members) if (m.net === net && (uts === undefined || m.uts === uts)) return pid;
    return undefined;
  }

  private resolveNsid(net: NsKey): number | null {
    const known = this.nsidOf.get(net);
    if (known !== undefined) return known;
    const pid = this.memberOf(net);
    let nsid: number | null = null;
    if (pid !== undefined) {
      let fd: number | undefined;
      try {
        fd = openSync(`/proc/${pid}/ns/net`, fsConstants.O_RDONLY);
        // The pid may have moved on since: trust the descriptor only if it is the namespace we mean.
        if (fstatSync(fd).ino === inodeOf(net)) nsid = this.nsids.getNsid(fd) ?? null;
      } catch {
        nsid = null;
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
    }
    this.nsidOf.set(net, nsid);
    return nsid;
  }

  /** Opens a UTS namespace to follow, through a member of the pair; undefined if none is left. */
  private open(net: NsKey, uts: NsKey): number | undefined {
    const pid = this.memberOf(net, uts);
    if (pid === undefined) return undefined;
    let fd: number;
    try {
      fd = openSync(`/proc/${pid}/ns/uts`, fsConstants.O_RDONLY);
    } catch {
      return undefined;
    }
    if (fstatSync(fd).ino !== inodeOf(uts)) {
      closeSync(fd);
      return undefined;
    }
    return fd;
  }

  /**
   * Follows what is related now, reads the host names (all of them after the doorbell, else those
   * just followed), and says so if what is published changed.
   */
  private refresh(readAll: boolean): void {
    if (this.pending) {
      clearImmediate(this.pending.immediate);
      readAll ||= this.pending.readAll;
      this.pending = undefined;
    }
    const host = new Set<NsKey>([this.selfUts, ...(this.pairs.get(this.selfNet)?.keys() ?? [])]);
    const wanted = new Map<NsKey, Set<number>>();
    for (const [net, utss] of this.pairs) {
      if (net === this.selfNet) continue;
      const nsid = this.resolveNsid(net);
      if (nsid === null) continue;
      // A workload may make UTS namespaces by the thousand: each followed one holds a descriptor
      // and may claim a name. The first MAX_UTS_PER_NAMESPACE by inode (the same state, the same
      // choice), the rest ignored, said once per namespace.
      const related = [...utss.keys()].filter((u) => !host.has(u)).sort((a, b) => inodeOf(a) - inodeOf(b));
      if (related.length > MAX_UTS_PER_NAMESPACE && !this.capped.has(net)) {
        this.capped.add(net);
        this.log.warn('uts-namespaces-capped', { nsid, related: related.length, followed: MAX_UTS_PER_NAMESPACE });
      }
      for (const uts of related.slice(0, MAX_UTS_PER_NAMESPACE)) {
        let s = wanted.get(uts);
        if (!s) wanted.set(uts, (s = new Set()));
        s.add(nsid);
        if (!this.followed.has(uts)) {
          const fd = this.open(net, uts);
          if (fd !== undefined) this.followed.set(uts, { fd, hostname: undefined });
        }
      }
    }
    for (const [uts, f] of this.followed) {
      if (wanted.has(uts)) continue;
      closeSync(f.fd);
      this.followed.delete(uts);
    }
    const list = [...this.followed.entries()].filter(([, f]) => readAll || f.hostname === undefined);
    if (list.length > 0) {
      this.stats.reads++;
      const names = this.nb.utsHostnames(list.map(([, f]) => f.fd));
      list.forEach(([uts, f], i) => {
        const n = names[i];
        f.hostname = Buffer.isBuffer(n) ? n.toString('latin1') : undefined;
        if (!Buffer.isBuffer(n) && !f.failed) {
          // Once per namespace: a sandbox that forbids joining UTS namespaces fails them all alike.
          f.failed = true;
          this.log.warn('hostname-unreadable', { uts, errno: n, reason: 'setns(CLONE_NEWUTS) or uname failed' });
        }
      });
    }
    const next = new Map<number, string[]>();
    for (const [uts, nsids] of wanted) {
      const h = this.followed.get(uts)?.hostname;
      if (h === undefined) continue;
      for (const nsid of nsids) {
        const l = next.get(nsid);
        if (l) l.push(h);
        else next.set(nsid, [h]);
      }
    }
    for (const l of next.values()) {
      l.sort();
      for (let i = l.length - 1; i > 0; i--) if (l[i] === l[i - 1]) l.splice(i, 1);
    }
    this.stats.processes = this.members.size;
    this.stats.followed = this.followed.size;
    if (sameNames(this.published, next)) return;
    this.log.debug('hostnames', { namespaces: next.size, followed: this.followed.size, processes: this.members.size });
    this.published = next;
    this.changed();
  }
}

function sameNames(a: ReadonlyMap<number, readonly string[]>, b: ReadonlyMap<number, readonly string[]>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || w.length !== v.length || v.some((x, i) => x !== w[i])) return false;
  }
  return true;
}
