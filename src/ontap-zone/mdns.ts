/**
 * ontap-zone's multicast DNS responders (--mdns): one LinkResponder per link of every published
 * workload, answering on that link from inside the workload's namespace. The responders come and go
 * with the publication: reconcile() after every publish() makes the set of responders match it.
 *
 * Sockets: one UDP socket per family per workload link, made inside the workload's namespace and
 * bound to the device (src/netns/link-udp.ts): a responder on the uplink neither hears its slaves'
 * multicast nor is heard by them. Each is polled (epoll through libuv: an idle link costs nothing)
 * and read through the addon, which reports the receiving interface, the destination and the hop
 * limit that RFC 6762 §11's source check needs.
 *
 * Segments: the macvlan (or ipvlan) devices of one uplink, in one mode, share a link: every one of
 * them hears the same multicast from the LAN, and in bridge mode (ipvlan L2) each other's. If every
 * socket joined the group, each packet on the segment would be read N times (N² for N workloads
 * announcing). So only one device per segment and family joins 224.0.0.251 / ff02::fb (the
 * segment's listener); the others are send-only but for unicast to their own address
 * (IP_MULTICAST_ALL off: no multicast for groups they did not join; their devices do not even take
 * the group's frames). What the listener hears is decoded once and handed to the responders that own
 * a name it mentions. A packet one of our responders sent is not handed back to it. When the
 * listener goes, another device of the segment joins in its place, in the same turn.
 *
 * Goodbyes (§10.1) go out on the device itself. A device ontapd releases loses its alias first and
 * is deleted no sooner than ontapd's goodbye window later, so the goodbye for a workload that ended
 * (even by kill -9) still has its link; see docs/design.md "mDNS".
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../common/log.js';
import { DnsDecodeError, decodeMessage, type Message } from '../mdns/dns.js';
import { LinkResponder, MDNS_PORT, type Clock, type Destination, type Received, type Transport } from '../mdns/responder.js';
import type { LinkAddress } from '../mdns/records.js';
import type { NativeBinding, Poller } from '../native/index.js';
import { joinLinkGroup, openLinkSocket } from '../netns/link-udp.js';
import { NetnsFinder, type NsidSource } from '../netns/netns-by-nsid.js';
import type { Link, LinkSelector } from '../netns/types.js';
import { inPrefix, parseAddress, parsePrefix, type Prefix } from './classify.js';
import type { NamespaceState, ZoneModel } from './model.js';
import type { Publication } from './publish.js';
import { usable } from './rank.js';

export const MDNS_GROUP4 = '224.0.0.251';
export const MDNS_GROUP6 = 'ff02::fb';
/** RFC 6762 §17: a multicast DNS message may be up to 9000 bytes; anything longer is not read. */
const MAX_DATAGRAM = 9000;
/** Datagrams read per socket per readiness callback, so one busy link cannot hold the loop. */
const READS_PER_TURN = 32;
/** A namespace we could not open is looked for again no sooner than this. */
const RETRY_OPEN_MS = 5000;
/** A packet one of our responders multicast is recognised, when the listener hears it, this long. */
const OWN_PACKET_MS = 2000;

const LINK_LOCAL4 = parsePrefix('169.254.0.0/16')!;
const LINK_LOCAL6 = parsePrefix('fe80::/10')!;

export const realClock: Clock = {
  now: () => performance.now(),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

interface LinkSocket {
  family: 4 | 6;
  fd: number;
  poller: Poller;
  /** Joined to the group: this socket hears the segment's multicast for every responder in it. */
  listening: boolean;
}

/** The devices that hear the same multicast: one uplink's macvlans (or ipvlans) in one mode. */
interface Segment {
  key: string;
  entries: Set<Entry>;
  /** Lowercase owner name -> the responders that own a record of it (RFC 6762 names are case-blind). */
  index: Map<string, Set<Entry>>;
  /** A packet's digest -> which of our responders multicast it, and when (oldest first). */
  sent: Map<string, { entry: Entry; at: number }>;
}

/** What the kernel is asked: nsids of namespaces, and a link's parent (its segment). */
export interface MdnsKernel extends NsidSource {
  getLink(sel: LinkSelector): Link;
}

interface Entry {
  key: string;
  /** `instance/label`: the entries of one workload (its links), which answer for the same name. */
  workload: string;
  nsid: number;
  ifindex: number;
  ifname: string;
  label: string;
  addressesKey: string;
  prefixes: Prefix[];
  /** The families the link has a usable address of: it can send only those (no source otherwise, e.g. during DAD). */
  families: Set<4 | 6>;
  sockets: LinkSocket[];
  responder: LinkResponder;
  segment: Segment;
  /** The names this entry is in segment.index under, and the responder's records version then. */
  indexed: string[];
  indexedVersion: number;
}

/** What one link of a workload publishes on the link: its usable addresses, in the zone's cap. */
export function linkAddresses(ns: NamespaceState, ifindex: number, max: number): { addresses: LinkAddress[]; prefixes: Prefix[] } {
  const addresses: LinkAddress[] = [];
  const prefixes: Prefix[] = [];
  for (const a of ns.addresses.get(ifindex)?.values() ?? []) {
    // inPrefix compares the prefix's bits only: the address itself stands for its prefix.
    prefixes.push({ family: a.family, bytes: a.bytes, length: a.prefixLength });
    if (a.cls === 'none' || !usable(a.family, a.flags)) continue;
    addresses.push({ family: a.family, address: a.address, bytes: a.bytes });
  }
  addresses.sort((x, y) => x.family - y.family || Buffer.compare(Buffer.from(x.bytes), Buffer.from(y.bytes)));
  return { addresses: addresses.slice(0, max), prefixes };
}

export interface MdnsStats {
  received: number;
  undecodable: number;
  offLink: number;
  sent: number;
  sendFailed: number;
  /** Handed to a responder: once per responder that owns a name the packet mentions. */
  dispatched: number;
}

export class MdnsService {
  private readonly entries = new Map<string, Entry>();
  /** Entry.workload -> the workload's entries. */
  private readonly workloads = new Map<string, Set<Entry>>();
  private readonly unopenable = new Map<number, number>();
  private readonly segments = new Map<string, Segment>();
  readonly stats: MdnsStats = { received: 0, undecodable: 0, offLink: 0, sent: 0, sendFailed: 0, dispatched: 0 };
  private lastUndecodableLog = -Infinity;
  private readonly finder: NetnsFinder;

  constructor(
    private readonly nb: NativeBinding,
    private readonly kernel: MdnsKernel,
    private readonly log: Logger,
    private readonly clock: Clock = realClock,
  ) {
    this.finder = new NetnsFinder(kernel);
  }

  /** Responders for what `pub` publishes, no others. */
  reconcile(model: ZoneModel, pub: Publication): void {
    const wanted = new Set<string>();
    for (const w of pub.workloads) {
      const ns = model.namespaces.get(w.nsid);
      if (!ns) continue;
      for (const l of w.links) {
        const link = ns.links.get(l.ifindex);
        // §13: a link that lost its carrier is left; when it is back, its name is probed and announced anew.
        if (!link?.up || !link.running) continue;
        const { addresses, prefixes } = linkAddresses(ns, l.ifindex, model.maxAddresses);
        if (addresses.length === 0) continue;
        // A link may carry several names (an alias and host names): a responder for each.
        const key = `${ns.instance}/${l.ifindex}/${w.name}`;
        wanted.add(key);
        const have = this.entries.get(key);
        const addressesKey = addresses.map((a) => a.address).join(',');
        if (have && have.label === w.name) {
          have.prefixes = prefixes;
          if (have.addressesKey !== addressesKey) {
            have.addressesKey = addressesKey;
            have.families = new Set(addresses.map((a) => a.family));
            have.responder.update(addresses);
            this.reindex(have);
          }
          continue;
        }
        if (have) this.remove(have, 'renamed');
        this.add(key, `${ns.instance}/${w.name}`, ns.nsid, l.ifindex, link.ifname, w.name, addresses, addressesKey, prefixes);
      }
    }
    for (const [key, e] of this.entries) if (!wanted.has(key)) this.remove(e, 'unpublished');
  }

  /** Goodbyes for everything, then every socket closed. */
  stop(): void {
    for (const e of [...this.entries.values()]) this.remove(e, 'stopping');
  }

  /** The responders, for logs and --status: where, which name, in which state. */
  status(): Array<{ nsid: number; ifname: string; label: string; name: string; state: string; listens: string }> {
    return [...this.entries.values()].map((e) => ({
      nsid: e.nsid, ifname: e.ifname, label: e.label, name: e.responder.name, state: e.responder.state,
      listens: e.sockets.filter((s) => s.listening).map((s) => s.family).join(',') || 'no',
    }));
  }

  /** How many segments there are, and how many sockets listen on them: one per segment and family. */
  segmentStats(): { segments: number; listeners: number } {
    let listeners = 0;
    for (const e of this.entries.values()) for (const s of e.sockets) if (s.listening) listeners++;
    return { segments: this.segments.size, listeners };
  }

  /**
   * The segment a link is on: its parent (asked of the kernel, so the parent's nsid is in our
   * namespace's frame, the same for every workload) with the kind and mode, for macvlan and
   * ipvlan. Anything else (a veth, a VLAN device: its siblings on one parent are separate links)
   * is a segment of its own. undefined when the link is gone.
   */
  private segmentKey(key: string, nsid: number, ifindex: number, ifname: string): string | undefined {
    let link: Link;
    try {
      link = this.kernel.getLink({ ifindex, targetNsid: nsid });
    } catch (e) {
      this.log.debug('mdns-link-gone', { nsid, ifname, error: (e as Error).message });
      return undefined;
    }
    if (link.ifname !== ifname) return undefined;
    const d = link.data;
    if (link.parentIfindex === undefined || link.parentIfindex === 0 || (d?.kind !== 'macvlan' && d?.kind !== 'ipvlan')) return `own:${key}`;
    return `${d.kind}:${d.mode}:${link.linkNetnsid ?? nsid}/${link.parentIfindex}`;
  }

  private add(key: string, workload: string, nsid: number, ifindex: number, ifname: string, label: string, addresses: LinkAddress[], addressesKey: string, prefixes: Prefix[]): void {
    const failedAt = this.unopenable.get(nsid);
    if (failedAt !== undefined && this.clock.now() - failedAt < RETRY_OPEN_MS) return;
    const segmentKey = this.segmentKey(key, nsid, ifindex, ifname);
    if (segmentKey === undefined) return;
    const netnsFd = this.finder.open(nsid);
    if (netnsFd === undefined) {
      this.unopenable.set(nsid, this.clock.now());
      this.log.warn('mdns-namespace-unreachable', { nsid, ifname, name: label, reason: 'no process or mount holds it where ontap-zone can open it' });
      return;
    }
    this.unopenable.delete(nsid);
    const sockets: LinkSocket[] = [];
    try {
      for (const family of [4, 6] as const) {
        let fd: number;
        try {
          // No group yet: the segment's listener joins it (listen() below).
          fd = openLinkSocket({ netnsFd, family, ifname, ifindex, port: MDNS_PORT, multicastHops: 255, multicastLoop: false, multicastAll: false });
        } catch (e) {
          this.log.warn('mdns-socket-failed', { nsid, ifname, family, error: (e as Error).message });
          continue;
        }
        sockets.push({ family, fd, poller: undefined as unknown as Poller, listening: false });
      }
    } finally {
      this.nb.close(netnsFd);
    }
    if (sockets.length === 0) return;
    const transport: Transport = {
      // Read at every send: IPv6 joins once the link has an IPv6 source (its link-local after DAD).
      get families() {
        return sockets.filter((s) => entry.families.has(s.family)).map((s) => s.family);
      },
      send: (family, packet, dest) => this.send(entry, family, packet, dest),
    };
    let segment = this.segments.get(segmentKey);
    if (!segment) {
      segment = { key: segmentKey, entries: new Set(), index: new Map(), sent: new Map() };
      this.segments.set(segmentKey, segment);
    }
    const responder = new LinkResponder({
      label, addresses, clock: this.clock, transport,
      events: {
        renamed: (from, to, reason) => this.log.warn('mdns-renamed', { nsid, ifname, name: label, from, to, reason }),
        established: (name) => this.log.info('mdns-established', { nsid, ifname, name: label, mdns: name }),
        deferred: (name) => this.log.info('mdns-probe-deferred', { nsid, ifname, name: label, mdns: name, reason: 'a simultaneous probe won the tie-break' }),
      },
      // The workload's other links may be on the same LAN: what they publish is not a conflict.
      ownedElsewhere: (record) => [...(this.workloads.get(workload) ?? [])].some((o) => o !== entry && o.responder.owns(record)),
    });
    const entry: Entry = {
      key, workload, nsid, ifindex, ifname, label, addressesKey, prefixes, families: new Set(addresses.map((a) => a.family)),
      sockets, responder, segment, indexed: [], indexedVersion: -1,
    };
    for (const s of sockets) {
      s.poller = this.nb.poll(s.fd, (err) => {
        if (err) {
          this.log.warn('mdns-socket-error', { nsid, ifname, family: s.family, error: err.message });
          return;
        }
        this.read(entry, s);
      });
      s.poller.start(true, false);
    }
    this.entries.set(key, entry);
    const siblings = this.workloads.get(workload);
    if (siblings) siblings.add(entry);
    else this.workloads.set(workload, new Set([entry]));
    segment.entries.add(entry);
    for (const s of sockets) if (!this.listenerOf(segment, s.family)) this.listen(entry, s);
    this.reindex(entry);
    responder.start();
  }

  private listenerOf(segment: Segment, family: 4 | 6): Entry | undefined {
    for (const e of segment.entries) if (e.sockets.some((s) => s.family === family && s.listening)) return e;
    return undefined;
  }

  /** Makes `s` its segment's listener for its family: joins the group on its device. */
  private listen(e: Entry, s: LinkSocket): boolean {
    try {
      joinLinkGroup(s.fd, s.family, s.family === 4 ? MDNS_GROUP4 : MDNS_GROUP6, e.ifindex, e.ifname);
    } catch (err) {
      this.log.warn('mdns-join-failed', { nsid: e.nsid, ifname: e.ifname, family: s.family, error: (err as Error).message });
      return false;
    }
    s.listening = true;
    this.log.debug('mdns-listening', { nsid: e.nsid, ifname: e.ifname, family: s.family, segment: e.segment.key });
    return true;
  }

  /** Keeps segment.index in step with the names the responder owns (they change with addresses and renames). */
  private reindex(e: Entry): void {
    const version = e.responder.recordsVersion;
    if (version === e.indexedVersion) return;
    this.setIndexed(e, e.responder.ownedNames());
    e.indexedVersion = version;
  }

  private setIndexed(e: Entry, names: string[]): void {
    const index = e.segment.index;
    for (const n of e.indexed) {
      const set = index.get(n);
      set?.delete(e);
      if (set?.size === 0) index.delete(n);
    }
    e.indexed = names;
    for (const n of names) {
      const set = index.get(n);
      if (set) set.add(e);
      else index.set(n, new Set([e]));
    }
  }

  private remove(e: Entry, reason: string): void {
    this.entries.delete(e.key);
    const siblings = this.workloads.get(e.workload);
    siblings?.delete(e);
    if (siblings?.size === 0) this.workloads.delete(e.workload);
    e.responder.stop();
    const segment = e.segment;
    segment.entries.delete(e);
    this.setIndexed(e, []);
    for (const s of e.sockets) {
      s.poller.close();
      this.nb.close(s.fd);
      if (!s.listening) continue;
      // Another device of the segment takes over at once: the first that can join.
      for (const o of segment.entries) {
        const os = o.sockets.find((x) => x.family === s.family);
        if (os && this.listen(o, os)) break;
      }
    }
    if (segment.entries.size === 0) this.segments.delete(segment.key);
    this.log.debug('mdns-stopped', { nsid: e.nsid, ifname: e.ifname, name: e.label, reason });
  }

  private send(e: Entry, family: 4 | 6, packet: Buffer, dest: Destination): void {
    const s = e.sockets.find((x) => x.family === family);
    if (!s || !e.families.has(family)) return;
    const address = dest.to === 'multicast' ? (family === 4 ? MDNS_GROUP4 : MDNS_GROUP6) : dest.address;
    const port = dest.to === 'multicast' ? MDNS_PORT : dest.port;
    try {
      const sent = this.nb.sendInet(s.fd, packet, family, address, port, family === 6 ? e.ifindex : 0);
      if (sent < 0) this.stats.sendFailed++;
      else this.stats.sent++;
      if (dest.to === 'multicast' && e.segment.entries.size > 1) this.rememberSent(e, packet);
    } catch (err) {
      this.stats.sendFailed++;
      this.log.debug('mdns-send-failed', { nsid: e.nsid, ifname: e.ifname, family, to: address, error: (err as Error).message });
    }
  }

  /** Which of our responders multicast `data`, if one of them did lately: it is not handed back to it. */
  private rememberSent(e: Entry, packet: Buffer): void {
    const now = this.clock.now();
    const sent = e.segment.sent;
    for (const [k, v] of sent) {
      if (now - v.at < OWN_PACKET_MS) break;
      sent.delete(k);
    }
    const key = digest(packet);
    sent.delete(key); // re-inserted at the end: the map stays oldest first
    sent.set(key, { entry: e, at: now });
  }

  private sender(segment: Segment, data: Buffer): Entry | undefined {
    if (segment.sent.size === 0) return undefined;
    const v = segment.sent.get(digest(data));
    return v && this.clock.now() - v.at < OWN_PACKET_MS ? v.entry : undefined;
  }

  /** A packet the segment's listener heard: to every responder that owns a name it mentions, but its sender. */
  private dispatch(segment: Segment, r: Received, data: Buffer): void {
    const m: Message = r.message;
    const names = new Set<string>();
    for (const q of m.questions) names.add(q.name.toLowerCase());
    for (const list of [m.answers, m.authorities, m.additionals]) for (const x of list) names.add(x.name.toLowerCase());
    const targets = new Set<Entry>();
    for (const n of names) for (const e of segment.index.get(n) ?? []) targets.add(e);
    if (targets.size === 0) return;
    const from = this.sender(segment, data);
    for (const e of targets) {
      if (e === from || !segment.entries.has(e)) continue;
      this.stats.dispatched++;
      e.responder.receive(r);
      this.reindex(e);
    }
  }

  /** §11: only packets from this link: a link-local source, one inside a prefix of the device, or hop limit 255. */
  private onLink(e: Entry, family: 4 | 6, source: string, hopLimit: number): boolean {
    if (hopLimit === 255) return true;
    const bytes = parseAddress(family, source);
    if (!bytes) return false;
    if (inPrefix(bytes, family === 4 ? LINK_LOCAL4 : LINK_LOCAL6)) return true;
    return e.prefixes.some((p) => p.family === family && inPrefix(bytes, p));
  }

  private read(e: Entry, s: LinkSocket): void {
    for (let i = 0; i < READS_PER_TURN; i++) {
      let d;
      try {
        d = this.nb.recvInet(s.fd, MAX_DATAGRAM);
      } catch (err) {
        this.log.debug('mdns-receive-failed', { nsid: e.nsid, ifname: e.ifname, error: (err as Error).message });
        return;
      }
      if (d === null) return;
      this.stats.received++;
      if (d.truncated) continue;
      if (!this.onLink(e, d.family, d.source, d.hopLimit)) {
        this.stats.offLink++;
        continue;
      }
      let message;
      try {
        message = decodeMessage(d.data);
      } catch (err) {
        if (!(err instanceof DnsDecodeError)) throw err;
        this.stats.undecodable++;
        const now = this.clock.now();
        if (now - this.lastUndecodableLog >= 10000) {
          this.lastUndecodableLog = now;
          this.log.info('mdns-undecodable', { nsid: e.nsid, ifname: e.ifname, source: d.source, error: err.message, count: this.stats.undecodable });
        }
        continue;
      }
      // Unicast to the device's address lands on any one of its names' sockets (SO_REUSEPORT):
      // it goes by name, like what the listener hears.
      const received: Received = { family: d.family, source: d.source, sourcePort: d.sourcePort, message };
      this.dispatch(e.segment, received, d.data);
      if (!this.entries.has(e.key)) return; // a responder's event ended it
    }
  }
}

function digest(packet: Buffer): string {
  return createHash('sha1').update(packet).digest('base64');
}

