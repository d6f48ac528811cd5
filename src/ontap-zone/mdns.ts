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
 * Goodbyes (§10.1) go out on the device itself. A device ontapd releases loses its alias first and
 * is deleted no sooner than ontapd's goodbye window later, so the goodbye for a workload that ended
 * (even by kill -9) still has its link; see docs/design.md "mDNS".
 */
import type { Logger } from '../common/log.js';
import { DnsDecodeError, decodeMessage } from '../mdns/dns.js';
import { LinkResponder, MDNS_PORT, type Clock, type Destination, type Transport } from '../mdns/responder.js';
import type { LinkAddress } from '../mdns/records.js';
import type { NativeBinding, Poller } from '../native/index.js';
import { openLinkSocket } from '../netns/link-udp.js';
import { openNetnsByNsid, type NsidSource } from '../netns/netns-by-nsid.js';
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
  sockets: LinkSocket[];
  responder: LinkResponder;
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
}

export class MdnsService {
  private readonly entries = new Map<string, Entry>();
  /** Entry.workload -> the workload's entries. */
  private readonly workloads = new Map<string, Set<Entry>>();
  private readonly unopenable = new Map<number, number>();
  readonly stats: MdnsStats = { received: 0, undecodable: 0, offLink: 0, sent: 0, sendFailed: 0 };
  private lastUndecodableLog = -Infinity;

  constructor(
    private readonly nb: NativeBinding,
    private readonly nsids: NsidSource,
    private readonly log: Logger,
    private readonly clock: Clock = realClock,
  ) {}

  /** Responders for what `pub` publishes, no others. */
  reconcile(model: ZoneModel, pub: Publication): void {
    const wanted = new Set<string>();
    for (const w of pub.workloads) {
      const ns = model.namespaces.get(w.nsid);
      if (!ns) continue;
      for (const l of w.links) {
        const link = ns.links.get(l.ifindex);
        if (!link?.up) continue;
        const { addresses, prefixes } = linkAddresses(ns, l.ifindex, model.maxAddresses);
        if (addresses.length === 0) continue;
        const key = `${ns.instance}/${l.ifindex}`;
        wanted.add(key);
        const have = this.entries.get(key);
        const addressesKey = addresses.map((a) => a.address).join(',');
        if (have && have.label === w.name) {
          have.prefixes = prefixes;
          if (have.addressesKey !== addressesKey) {
            have.addressesKey = addressesKey;
            have.responder.update(addresses);
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
  status(): Array<{ nsid: number; ifname: string; label: string; name: string; state: string }> {
    return [...this.entries.values()].map((e) => ({ nsid: e.nsid, ifname: e.ifname, label: e.label, name: e.responder.name, state: e.responder.state }));
  }

  private add(key: string, workload: string, nsid: number, ifindex: number, ifname: string, label: string, addresses: LinkAddress[], addressesKey: string, prefixes: Prefix[]): void {
    const failedAt = this.unopenable.get(nsid);
    if (failedAt !== undefined && this.clock.now() - failedAt < RETRY_OPEN_MS) return;
    const netnsFd = openNetnsByNsid(this.nsids, nsid);
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
          fd = openLinkSocket({ netnsFd, family, ifname, ifindex, port: MDNS_PORT, group: family === 4 ? MDNS_GROUP4 : MDNS_GROUP6, multicastHops: 255, multicastLoop: false });
        } catch (e) {
          this.log.warn('mdns-socket-failed', { nsid, ifname, family, error: (e as Error).message });
          continue;
        }
        sockets.push({ family, fd, poller: undefined as unknown as Poller });
      }
    } finally {
      this.nb.close(netnsFd);
    }
    if (sockets.length === 0) return;
    const transport: Transport = {
      families: sockets.map((s) => s.family),
      send: (family, packet, dest) => this.send(entry, family, packet, dest),
    };
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
    const entry: Entry = { key, workload, nsid, ifindex, ifname, label, addressesKey, prefixes, sockets, responder };
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
    responder.start();
  }

  private remove(e: Entry, reason: string): void {
    this.entries.delete(e.key);
    const siblings = this.workloads.get(e.workload);
    siblings?.delete(e);
    if (siblings?.size === 0) this.workloads.delete(e.workload);
    e.responder.stop();
    for (const s of e.sockets) {
      s.poller.close();
      this.nb.close(s.fd);
    }
    this.log.debug('mdns-stopped', { nsid: e.nsid, ifname: e.ifname, name: e.label, reason });
  }

  private send(e: Entry, family: 4 | 6, packet: Buffer, dest: Destination): void {
    const s = e.sockets.find((x) => x.family === family);
    if (!s) return;
    const address = dest.to === 'multicast' ? (family === 4 ? MDNS_GROUP4 : MDNS_GROUP6) : dest.address;
    const port = dest.to === 'multicast' ? MDNS_PORT : dest.port;
    try {
      const sent = this.nb.sendInet(s.fd, packet, family, address, port, family === 6 ? e.ifindex : 0);
      if (sent < 0) this.stats.sendFailed++;
      else this.stats.sent++;
    } catch (err) {
      this.stats.sendFailed++;
      this.log.debug('mdns-send-failed', { nsid: e.nsid, ifname: e.ifname, family, to: address, error: (err as Error).message });
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
      e.responder.receive({ family: d.family, source: d.source, sourcePort: d.sourcePort, message });
    }
  }
}
