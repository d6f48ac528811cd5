/**
 * One workload's name on one link, as RFC 6762 asks of a responder: probe (§8.1, §8.2), announce
 * (§8.3, §8.4), answer (§5, §6, §7.1), defend and rename on conflicts (§9), say goodbye (§10.1).
 *
 * The responder owns no socket and no timer of its own: packets go out through a Transport (the
 * link's sockets, one per family), time comes from a Clock. It is fed what arrived on the link,
 * already decoded and source-checked (§11) by its caller. So its behaviour is a function of what it
 * is fed and when, which the unit tests drive with a clock of their own.
 */
import { CLASS_IN, FLAG_AA, FLAG_QR, TYPE, encodeMessage, rdataBytes, sameName, type Message, type Question, type ResourceRecord } from './dns.js';
import { localName, recordSet, type LinkAddress, type RecordSet } from './records.js';

export const MDNS_PORT = 5353;
/** §8.1: probes 250 ms apart, three of them, then 250 ms more without a conflict. */
export const PROBE_INTERVAL_MS = 250;
const PROBES = 3;
/** §8.3: at least two announcements, one second apart. */
const ANNOUNCE_INTERVAL_MS = 1000;
const ANNOUNCEMENTS = 2;
/** §8.2: the loser of a simultaneous probe waits a second and probes again. */
const TIE_LOSS_WAIT_MS = 1000;
/** §8.1: after 15 conflicts within 10 s, wait 5 s before each further attempt. */
const CONFLICT_BURST = 15;
const CONFLICT_WINDOW_MS = 10000;
const CONFLICT_WAIT_MS = 5000;
/** §6: a record is multicast at most once a second on a link, or every 250 ms in reply to a probe. */
const MULTICAST_INTERVAL_MS = 1000;
const PROBE_REPLY_INTERVAL_MS = 250;
/** §6.7: legacy unicast answers carry a TTL of at most 10 s. */
const LEGACY_TTL = 10;
/**
 * §6.7: a legacy answer repeats the question. Only the questions it answers, each once, and at most
 * this many: echoing all of them would turn a 9 KB query of one question repeated into a 9 KB answer.
 */
const LEGACY_QUESTIONS = 8;
/**
 * Unicast answers (QU and legacy queries) per link: 20 at once, then 20 a second. A forged query
 * names its own destination, so a flood of them must not become a flood of answers.
 */
const UNICAST_BURST = 20;
const UNICAST_PER_S = 20;
/** Address changes are announced at once, but no more often than this (the workload may churn). */
const UPDATE_SPACING_MS = 100;
/** RFC 6762 §17: an mDNS message should fit the link's MTU; we keep to what fits in 1500 bytes. */
const MAX_PACKET = 1440;
const ANY = TYPE.ANY;

export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  after(ms: number, fn: () => void): Timer;
}

export type Destination = { to: 'multicast' } | { to: 'unicast'; address: string; port: number };

export interface Transport {
  /** The families this link has a socket for. */
  readonly families: ReadonlyArray<4 | 6>;
  send(family: 4 | 6, packet: Buffer, dest: Destination): void;
}

export interface Received {
  family: 4 | 6;
  source: string;
  sourcePort: number;
  message: Message;
}

export interface ResponderEvents {
  /** A conflict made us take another name (`reason`: what we saw). */
  renamed?(from: string, to: string, reason: string): void;
  /** Probing ended without a conflict: the name is ours. */
  established?(name: string): void;
  /** A simultaneous probe for our name won the tie-break (§8.2): we probe again in a second. */
  deferred?(name: string): void;
}

export type ResponderState = 'waiting' | 'probing' | 'announcing' | 'established' | 'stopped';

export interface ResponderOptions {
  /** The workload's label: we answer for LABEL.local, or LABEL-N.local after conflicts. */
  label: string;
  addresses: readonly LinkAddress[];
  clock: Clock;
  transport: Transport;
  /** 0 <= random() < 1, for the probe's initial delay (§8.1). */
  random?: () => number;
  /**
   * Whether this host publishes `record` through another responder: the same workload's other
   * links, which may be on the same LAN (two devices on one uplink hear each other's multicast in
   * macvlan bridge mode). Seen on the wire, those are our own records, never a conflict (RFC 6762
   * §14: a host must not take its own records, seen on another interface, for another host's).
   */
  ownedElsewhere?: (record: ResourceRecord) => boolean;
  events?: ResponderEvents;
}

function recordKey(r: ResourceRecord): string {
  return `${r.name.toLowerCase()}/${r.type}/${Buffer.from(rdataBytes(r)).toString('hex')}`;
}

/** §8.2: compare two record sets as sorted (class, type, rdata) sequences; <0 when `a` is earlier. */
export function compareForTieBreak(a: readonly ResourceRecord[], b: readonly ResourceRecord[]): number {
  const order = (x: ResourceRecord, y: ResourceRecord) =>
    x.class - y.class || x.type - y.type || Buffer.compare(Buffer.from(rdataBytes(x)), Buffer.from(rdataBytes(y)));
  const sa = [...a].sort(order);
  const sb = [...b].sort(order);
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    const c = order(sa[i]!, sb[i]!);
    if (c !== 0) return c;
  }
  return sa.length - sb.length;
}

export class LinkResponder {
  private base: string;
  private attempt = 1;
  private records: RecordSet;
  /** Moves whenever `records` is replaced (new addresses, a new name): ownedNames() may differ. */
  private version = 0;
  private stateNow: ResponderState = 'waiting';
  private timer: Timer | undefined;
  private updateTimer: Timer | undefined;
  private lastUpdate = -Infinity;
  private probesSent = 0;
  private announcementsSent = 0;
  private conflicts: number[] = [];
  /** Record key -> when it was last multicast, per family. */
  private readonly multicastAt = new Map<string, number>();
  private unicastTokens = UNICAST_BURST;
  private unicastAt = 0;
  /** Records peers may hold: what we announced or answered since the last goodbye. */
  private announced = false;
  private readonly random: () => number;
  /** We lost a tie-break (§8.2) and wait before probing again. */
  private deferring = false;

  constructor(private readonly opts: ResponderOptions) {
    this.base = opts.label;
    this.records = recordSet(localName(opts.label), opts.addresses);
    this.random = opts.random ?? Math.random;
    this.unicastAt = opts.clock.now();
  }

  get state(): ResponderState {
    return this.stateNow;
  }

  /** The full name we answer for now (after renames, LABEL-N.local). */
  get name(): string {
    return this.records.name;
  }

  /** Moves whenever the records change; ownedNames() can differ only when it has. */
  get recordsVersion(): number {
    return this.version;
  }

  /** The lowercase owner names of every record we publish now: the name and the reverse names. */
  ownedNames(): string[] {
    return [...this.records.byName.keys()];
  }

  get label(): string {
    return this.attempt === 1 ? this.base : `${this.base}-${this.attempt}`;
  }

  /** Starts probing after a random 0-250 ms (§8.1), so that hosts starting together do not collide. */
  start(): void {
    if (this.stateNow !== 'waiting') return;
    this.beginProbing(Math.floor(this.random() * PROBE_INTERVAL_MS));
  }

  /** The link's addresses changed: re-announce at once (§8.4), with goodbyes for what went away. */
  update(addresses: readonly LinkAddress[]): void {
    const before = this.records;
    this.records = recordSet(before.name, addresses);
    this.version++;
    if (this.stateNow !== 'announcing' && this.stateNow !== 'established') return;
    const now = new Set(this.records.all.map(recordKey));
    const gone = before.all.filter((r) => !now.has(recordKey(r)));
    this.pendingGoodbyes.push(...gone);
    const wait = Math.max(0, this.lastUpdate + UPDATE_SPACING_MS - this.opts.clock.now());
    this.updateTimer?.cancel();
    this.updateTimer = this.opts.clock.after(wait, () => {
      this.updateTimer = undefined;
      this.lastUpdate = this.opts.clock.now();
      this.announcementsSent = 0;
      this.announce();
    });
  }

  private pendingGoodbyes: ResourceRecord[] = [];

  /**
   * Ends the responder: a goodbye (§10.1, TTL 0) for every record peers may hold is sent on the link
   * and returned, so a caller whose sockets are gone can say it another way.
   */
  stop(): Buffer[] {
    if (this.stateNow === 'stopped') return [];
    const held = this.announced;
    this.stateNow = 'stopped';
    this.timer?.cancel();
    this.updateTimer?.cancel();
    if (!held) return [];
    const packets = this.goodbyePackets([...this.records.all, ...this.pendingGoodbyes]);
    this.pendingGoodbyes = [];
    for (const family of this.opts.transport.families) for (const p of packets) this.opts.transport.send(family, p, { to: 'multicast' });
    return packets;
  }

  /** A goodbye for `records`: the same records with TTL 0, in as many packets as they need. */
  goodbyePackets(records: readonly ResourceRecord[]): Buffer[] {
    return this.pack({ answers: records.map((r) => ({ ...r, ttl: 0 })), additionals: [] });
  }

  receive(r: Received): void {
    if (this.stateNow === 'stopped' || this.stateNow === 'waiting') return;
    const m = r.message;
    if ((m.flags & FLAG_QR) !== 0) this.onResponse(m);
    else this.onQuery(r);
  }

  // Probing and announcing.

  private beginProbing(delayMs: number): void {
    this.timer?.cancel();
    this.stateNow = 'probing';
    this.deferring = false;
    this.probesSent = 0;
    this.timer = this.opts.clock.after(delayMs, () => this.probe());
  }

  private probe(): void {
    if (this.stateNow !== 'probing') return;
    if (this.probesSent === PROBES) {
      this.stateNow = 'announcing';
      this.announcementsSent = 0;
      this.opts.events?.established?.(this.records.name);
      this.announce();
      return;
    }
    const q: Question = { name: this.records.name, type: ANY, class: CLASS_IN, unicastResponse: this.probesSent === 0 };
    const message: Message = { id: 0, flags: 0, questions: [q], answers: [], authorities: this.records.addresses, additionals: [] };
    const packet = encodeMessage(message);
    for (const family of this.opts.transport.families) this.opts.transport.send(family, packet, { to: 'multicast' });
    this.probesSent++;
    this.timer = this.opts.clock.after(PROBE_INTERVAL_MS, () => this.probe());
  }

  private announce(): void {
    if (this.stateNow !== 'announcing' && this.stateNow !== 'established') return;
    const now = this.opts.clock.now();
    const answers = [...this.records.all, ...this.pendingGoodbyes.map((g) => ({ ...g, ttl: 0 }))];
    this.pendingGoodbyes = [];
    for (const family of this.opts.transport.families) {
      for (const p of this.pack({ answers, additionals: [] })) this.opts.transport.send(family, p, { to: 'multicast' });
      for (const rec of this.records.all) this.multicastAt.set(`${family}/${recordKey(rec)}`, now);
    }
    this.announced = true;
    this.announcementsSent++;
    this.timer?.cancel();
    if (this.announcementsSent < ANNOUNCEMENTS) {
      this.timer = this.opts.clock.after(ANNOUNCE_INTERVAL_MS, () => this.announce());
    } else {
      this.timer = undefined;
      this.stateNow = 'established';
    }
  }

  /** §9: another host has the name (or won the tie-break with different data): take the next one. */
  private conflict(reason: string): void {
    const now = this.opts.clock.now();
    this.conflicts = this.conflicts.filter((t) => now - t < CONFLICT_WINDOW_MS);
    this.conflicts.push(now);
    const from = this.records.name;
    this.attempt++;
    this.records = recordSet(localName(this.label), this.currentAddresses());
    this.version++;
    this.announced = false;
    this.multicastAt.clear();
    this.opts.events?.renamed?.(from, this.records.name, reason);
    const wait = this.conflicts.length >= CONFLICT_BURST ? CONFLICT_WAIT_MS : Math.floor(this.random() * PROBE_INTERVAL_MS);
    this.beginProbing(wait);
  }

  private currentAddresses(): LinkAddress[] {
    return this.records.addresses.map((r) => {
      const address = r.data.kind === 'a' || r.data.kind === 'aaaa' ? r.data.address : '';
      return { family: r.type === TYPE.A ? 4 : 6, address, bytes: rdataBytes(r) };
    });
  }

  // What arrives.

  /** Whether `r` is one of the records this responder publishes now (name, type and data). */
  owns(r: ResourceRecord): boolean {
    return this.records.byName.get(r.name.toLowerCase())?.some((o) => recordKey(o) === recordKey(r)) ?? false;
  }

  /** Ours, or this host's through another of its responders: not another host's. */
  private isOurs(r: ResourceRecord): boolean {
    return this.owns(r) || (this.opts.ownedElsewhere?.(r) ?? false);
  }

  private onResponse(m: Message): void {
    const theirs = [...m.answers, ...m.additionals];
    if (this.stateNow === 'probing') {
      // §8.1: any record of the name we probe for, that is not ours, is another host's: defer.
      const clash = theirs.find((r) => sameName(r.name, this.records.name) && !this.isOurs(r) && r.ttl > 0);
      if (clash) this.conflict(`a response has ${this.records.name} type ${clash.type}`);
      return;
    }
    // §9: a unique record of our name with other data. Probing again settles who keeps it.
    const clash = theirs.find((r) => sameName(r.name, this.records.name) && (r.type === TYPE.A || r.type === TYPE.AAAA)
      && r.ttl > 0 && !this.isOurs(r));
    if (clash) {
      this.announced = true; // peers may still hold what we announced
      this.beginProbing(0);
    }
  }

  private onQuery(r: Received): void {
    const m = r.message;
    if (this.stateNow === 'probing') {
      // §8.2: a simultaneous probe for our name. The lexicographically later data wins.
      const probing = m.questions.some((q) => sameName(q.name, this.records.name));
      const claimed = m.authorities.filter((a) => sameName(a.name, this.records.name));
      // A probe of this host's own (another link of the workload) is no rival, whatever its data.
      const theirs = claimed.some((a) => !this.isOurs(a)) ? claimed : [];
      if (probing && theirs.length > 0) {
        const c = compareForTieBreak(this.records.addresses, theirs);
        if (c < 0) {
          // Each further probe of the winner's restarts the wait: it is still probing.
          this.timer?.cancel();
          this.timer = this.opts.clock.after(TIE_LOSS_WAIT_MS, () => this.beginProbing(0));
          this.stateNow = 'probing';
          this.probesSent = PROBES + 1; // no probe until the wait is over
          if (!this.deferring) this.opts.events?.deferred?.(this.records.name);
          this.deferring = true;
        }
      }
      return;
    }
    this.answer(r);
  }

  private answer(r: Received): void {
    const m = r.message;
    const legacy = r.sourcePort !== MDNS_PORT;
    const isProbe = m.authorities.length > 0;
    const answers = new Map<string, ResourceRecord>();
    const asked = new Map<string, Question>();
    let unicast = legacy;
    for (const q of m.questions) {
      if (q.class !== CLASS_IN && q.class !== ANY) continue;
      const owned = this.records.byName.get(q.name.toLowerCase());
      if (!owned) continue;
      const matching = owned.filter((o) => q.type === ANY || o.type === q.type);
      // §6.1: a name we own without the type asked for: its NSEC says so at once.
      const chosen = matching.length > 0 ? matching : owned.filter((o) => o.type === TYPE.NSEC);
      for (const o of chosen) answers.set(recordKey(o), o);
      const key = `${q.name.toLowerCase()}/${q.type}/${q.class}`;
      if (chosen.length > 0 && asked.size < LEGACY_QUESTIONS && !asked.has(key)) asked.set(key, q);
      if (q.unicastResponse) unicast = true;
    }
    if (answers.size === 0) return;
    // §7.1: known answers with at least half our TTL left need not be sent again.
    for (const k of m.answers) {
      const key = recordKey(k);
      const ours = answers.get(key);
      if (ours && k.ttl >= ours.ttl / 2) answers.delete(key);
    }
    if (answers.size === 0) return;
    const additionals = this.additionalsFor([...answers.values()], answers);
    const now = this.opts.clock.now();
    // §5.4: a QU question is answered by unicast only if the records went out by multicast within
    // a quarter of their TTL; otherwise by multicast, so that every cache on the link is refreshed.
    const recent = (rec: ResourceRecord) => now - (this.multicastAt.get(`${r.family}/${recordKey(rec)}`) ?? -Infinity) < (rec.ttl * 1000) / 4;
    if (!legacy && unicast && ![...answers.values()].every(recent)) unicast = false;
    if (unicast) {
      if (!this.takeUnicastToken()) return;
      const ttl = (rec: ResourceRecord) => (legacy ? { ...rec, ttl: Math.min(rec.ttl, LEGACY_TTL), cacheFlush: false } : rec);
      const packets = this.pack({
        id: legacy ? m.id : 0,
        questions: legacy ? [...asked.values()] : [],
        answers: [...answers.values()].map(ttl),
        additionals: additionals.map(ttl),
      });
      for (const p of packets) this.opts.transport.send(r.family, p, { to: 'unicast', address: r.source, port: r.sourcePort });
      return;
    }
    // §6: each record multicast at most once a second on this link (every 250 ms for probes).
    const interval = isProbe ? PROBE_REPLY_INTERVAL_MS : MULTICAST_INTERVAL_MS;
    const due = [...answers.values()].filter((a) => now - (this.multicastAt.get(`${r.family}/${recordKey(a)}`) ?? -Infinity) >= interval);
    if (due.length === 0) return;
    for (const a of due) this.multicastAt.set(`${r.family}/${recordKey(a)}`, now);
    this.announced = true;
    for (const p of this.pack({ answers: due, additionals })) this.opts.transport.send(r.family, p, { to: 'multicast' });
  }

  /** §6.2: with an address, the name's other addresses (and its NSEC); with a PTR, the name's addresses. */
  private additionalsFor(answers: ResourceRecord[], inAnswers: Map<string, ResourceRecord>): ResourceRecord[] {
    const extra = new Map<string, ResourceRecord>();
    const own = this.records.byName.get(this.records.name.toLowerCase()) ?? [];
    for (const a of answers) {
      if (a.type === TYPE.A || a.type === TYPE.AAAA || a.type === TYPE.PTR) {
        for (const o of own) if (!inAnswers.has(recordKey(o))) extra.set(recordKey(o), o);
      }
    }
    return [...extra.values()];
  }

  private takeUnicastToken(): boolean {
    const now = this.opts.clock.now();
    this.unicastTokens = Math.min(UNICAST_BURST, this.unicastTokens + ((now - this.unicastAt) / 1000) * UNICAST_PER_S);
    this.unicastAt = now;
    if (this.unicastTokens < 1) return false;
    this.unicastTokens -= 1;
    return true;
  }

  /** A response in as many packets as it needs: answers split, additionals only where they fit. */
  private pack(p: { id?: number; questions?: Question[]; answers: ResourceRecord[]; additionals: ResourceRecord[] }): Buffer[] {
    const base = { id: p.id ?? 0, flags: FLAG_QR | FLAG_AA, questions: p.questions ?? [], authorities: [] as ResourceRecord[] };
    const whole = encodeMessage({ ...base, answers: p.answers, additionals: p.additionals });
    if (whole.length <= MAX_PACKET) return [whole];
    const alone = encodeMessage({ ...base, answers: p.answers, additionals: [] });
    if (alone.length <= MAX_PACKET) return [alone];
    const out: Buffer[] = [];
    let chunk: ResourceRecord[] = [];
    for (const a of p.answers) {
      const next = [...chunk, a];
      if (chunk.length > 0 && encodeMessage({ ...base, answers: next, additionals: [] }).length > MAX_PACKET) {
        out.push(encodeMessage({ ...base, answers: chunk, additionals: [] }));
        chunk = [a];
      } else {
        chunk = next;
      }
    }
    if (chunk.length > 0) out.push(encodeMessage({ ...base, answers: chunk, additionals: [] }));
    return out;
  }
}
