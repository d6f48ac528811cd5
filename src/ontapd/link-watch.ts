/**
 * Watches the links of the devices ontapd handed out, for changes their holders make behind its
 * back. One NETLINK_ROUTE socket in ontapd's namespace, RTNLGRP_LINK with NETLINK_LISTEN_ALL_NSID:
 * taps live in our namespace, and every namespace we place a device in has an nsid here (ensured
 * before the device is created), so its link events reach us.
 *
 * Devices are keyed by (nsid, ifindex) as the kernel reports them: an event whose key is not ours
 * costs a header read and nothing else, however many a namespace's owner makes (a veth loop), and
 * the reader yields to the event loop every few milliseconds (RouteMonitor). A lost event (ENOBUFS)
 * makes the watch ask the kernel for each watched device again (RTM_GETLINK: work in proportion to
 * our devices, not to what the flooder made), a few dozen per turn of the event loop.
 *
 * A device stays watched from its allocation until the kernel reports it gone, so a released tap
 * whose descriptors are still open is guarded too while it waits in the release group.
 */
import type { NativeBinding } from '../native/index.js';
import { RouteMonitor, type RouteEvent } from '../netns/route-monitor.js';
import { closeSync, openSync } from 'node:fs';
import { RouteSocket } from '../netns/route-socket.js';
import type { Link } from '../netns/types.js';
import type { Logger } from '../common/log.js';
import type { Device } from './devices.js';

/** What a holder did to a watched device. */
export type LinkProblem =
  /** The hardware address changed; `restored` if ontapd put its own back. */
  | { kind: 'address-changed'; address: string | undefined; restored: boolean }
  /** The kernel reported the device deleted (by someone else than ontapd's release). */
  | { kind: 'deleted' }
  /**
   * Moved into another namespace (RTM_DELLINK with IFLA_NEW_NETNSID). `deleted`: ontapd found it
   * there and deleted it; else it was gone from there before ontapd looked (moved on, out of
   * sight): it is still on the uplink, somewhere.
   */
  | { kind: 'moved'; deleted: boolean }
  /** Gone from where it was while events were lost (an overrun), or another device has its ifindex now. */
  | { kind: 'vanished' }
  /** More than FLOOD_EVENTS link events in a second: its holder is making them in a loop. */
  | { kind: 'flooding'; events: number };

export interface Watched {
  device: Device;
  /** The uplink's ifindex in ontapd's namespace: a moved device is recognised by its parent. */
  uplinkIfindex: number;
  /**
   * Whether the hardware address is ontapd's to keep: not for the ipvlan family and passthru,
   * whose address follows the uplink's.
   */
  guardAddress: boolean;
  onProblem(problem: LinkProblem): void;
}

/** Devices checked per turn of the event loop after an overrun. */
const RESYNC_BATCH = 64;
/** A new check of every device starts at most this often, however often events are lost. */
const RESYNC_INTERVAL_MS = 100;
/**
 * Link events one device may cause in a second. A workload's device sees a handful in its life
 * (created, up, carrier, the offloads a guest sets; the kernel's linkwatch batches operstate
 * changes to one a second); a holder can make tens of thousands a second (SIOCSIFHWADDR with the
 * address it has changes nothing and is reported every time), each one read here and each one
 * holding rtnl_lock for everyone on the host.
 */
export const FLOOD_EVENTS = 200;
/** Receive buffer (SO_RCVBUFFORCE): about 2,000 link events. */
const RCVBUF = 4 << 20;

function keyOf(nsid: number | undefined, ifindex: number): string {
  return `${nsid ?? 'own'}/${ifindex}`;
}

export function guardsAddress(device: Device): boolean {
  return device.family === 'macvlan' && device.info.mode !== 'passthru';
}

export class LinkWatch {
  private readonly entries = new Map<string, Watched>();
  private monitor: RouteMonitor | undefined;
  private resyncing = false;
  private resyncAgain = false;
  /** The last address restore queued: they run one after another. */
  private restoring: Promise<unknown> = Promise.resolve();
  private resyncStarted = 0;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly rates = new WeakMap<Watched, { since: number; events: number; reported: boolean }>();
  /** Counters for logs and tests. */
  readonly stats = { overruns: 0, restored: 0 };

  private constructor(private readonly rtnl: RouteSocket, private readonly log: Logger) {}

  /** `binding`: the addon (tests pass a fake); default native(). */
  static open(rtnl: RouteSocket, log: Logger, binding?: NativeBinding): LinkWatch {
    const w = new LinkWatch(rtnl, log);
    const monitor = RouteMonitor.open({
      ...(binding ? { binding } : {}),
      groups: ['link'],
      rcvbuf: RCVBUF,
      briefLinks: true,
      linkFilter: (nsid, ifindex) => w.entries.has(keyOf(nsid, ifindex)),
    });
    monitor.on('event', (e) => w.onEvent(e));
    monitor.on('warning', (e) => log.warn('link-watch-undecodable', { error: e.message }));
    monitor.on('error', (e) => log.error('link-watch-failed', { error: e.message }));
    w.monitor = monitor;
    return w;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Watches a device from now until the kernel reports it gone. */
  watch(w: Watched): void {
    this.entries.set(keyOf(w.device.nsid, w.device.ifindex), w);
  }

  close(): void {
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.monitor?.close();
    this.monitor = undefined;
    this.entries.clear();
  }

  private onEvent(e: RouteEvent): void {
    switch (e.type) {
      case 'newlink': {
        const w = this.entries.get(keyOf(e.nsid, e.link.ifindex));
        if (w) {
          this.count(w);
          this.compare(w, e.link);
        }
        break;
      }
      case 'dellink': {
        const key = keyOf(e.nsid, e.link.ifindex);
        const w = this.entries.get(key);
        if (!w) break;
        this.entries.delete(key);
        if (e.link.newNetnsid !== undefined && e.link.newIfindex !== undefined) w.onProblem({ kind: 'moved', deleted: this.chase(w, e.link.newNetnsid, e.link.newIfindex) });
        else w.onProblem({ kind: 'deleted' });
        break;
      }
      case 'overrun':
        this.stats.overruns++;
        this.resync();
        break;
      default:
        break;
    }
  }

  /** Counts the device's events; the first time there are more than FLOOD_EVENTS in a second, reports it. */
  private count(w: Watched): void {
    const now = Date.now();
    let r = this.rates.get(w);
    if (r === undefined || (now - r.since >= 1000 && !r.reported)) {
      r = { since: now, events: 0, reported: false };
      this.rates.set(w, r);
    }
    if (++r.events > FLOOD_EVENTS && !r.reported) {
      r.reported = true;
      w.onProblem({ kind: 'flooding', events: r.events });
    }
  }

  private compare(w: Watched, link: Link): void {
    const d = w.device;
    if (link.kind !== d.info.type) {
      // The ifindex belongs to another device now: ours went while we were not looking.
      this.entries.delete(keyOf(d.nsid, d.ifindex));
      w.onProblem({ kind: 'vanished' });
      return;
    }
    if (!w.guardAddress || link.address === d.info.hwaddr) return;
    // The lease's end (and the device's deletion) waits for the address to be back: a deletion
    // queued first would hold rtnl_lock for its grace period while the device still takes frames.
    void this.restore(d).then((restored) => w.onProblem({ kind: 'address-changed', address: link.address, restored }));
  }

  /**
   * Puts ontapd's address back. macvlan takes the device out of its port's address table first
   * and then waits for an RCU grace period under rtnl_lock (~13 ms here) before it re-adds it, so
   * frames for the taken address stop reaching the device as soon as the kernel starts on the
   * request; the wait runs on the thread pool (own namespace) so the event loop goes on serving.
   * One at a time: callers cause these, and the pool's other work is releases, which must not
   * wait behind what a caller does (each one a grace period under rtnl_lock anyway, so running
   * them side by side would gain nothing). A device elsewhere needs a socket made in its
   * namespace: there the request is synchronous.
   */
  private restore(d: Device): Promise<boolean> {
    const next = this.restoring.then(() => this.putBack(d));
    this.restoring = next;
    return next;
  }

  private async putBack(d: Device): Promise<boolean> {
    const started = process.hrtime.bigint();
    try {
      if (d.nsid === undefined) await this.rtnl.setLinkAsync({ ifindex: d.ifindex }, { address: d.info.hwaddr });
      else if (d.netnsFd !== undefined) this.rtnl.setLink({ ifindex: d.ifindex, netnsFd: d.netnsFd }, { address: d.info.hwaddr });
      else return false; // its namespace descriptor is closed: the device went with its group
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENODEV') this.log.warn('restore-failed', { ifname: d.info.ifname, nsid: d.nsid, error: (e as Error).message });
      return false;
    }
    this.stats.restored++;
    this.log.debug('address-restored', { ifname: d.info.ifname, nsid: d.nsid, us: Number((process.hrtime.bigint() - started) / 1000n) });
    return true;
  }

  /**
   * Deletes a device its holder moved into another namespace, found by the nsid and ifindex the
   * kernel reported with the move. The nsid is in the frame of the namespace the device left, so
   * the requests go through a socket made there (our own, for a device of our namespace); they may
   * address the new namespace by that nsid. Whatever has that ifindex there must still be our kind
   * on our uplink (its parent's namespace, IFLA_LINK_NETNSID, is in the socket's frame too):
   * otherwise the device moved on before we looked, into a namespace we cannot name. The holder
   * needs CAP_NET_ADMIN over both namespaces, so only a caller with a user namespace of its own
   * (or root) gets here.
   */
  private chase(w: Watched, newNsid: number, newIfindex: number): boolean {
    const d = w.device;
    if (d.nsid !== undefined && d.netnsFd === undefined) return false;
    const local = d.nsid === undefined ? this.rtnl : RouteSocket.open({ netnsFd: d.netnsFd });
    try {
      const target = { ifindex: newIfindex, targetNsid: newNsid };
      const link = local.getLink(target);
      // The id the socket's namespace has for ours: asked after the reply, which may have made it.
      const ours = d.nsid === undefined ? local.selfNsid() : this.withOwnNamespace((fd) => local.getNsid(fd));
      const onUplink = link.parentIfindex === w.uplinkIfindex &&
        (link.linkNetnsid === ours || (link.linkNetnsid === undefined && newNsid === ours));
      if (link.kind !== d.info.type || !onUplink) return false;
      local.deleteLink(target);
      return true;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== 'ENODEV' && code !== 'EINVAL') this.log.warn('chase-failed', { ifname: d.info.ifname, nsid: d.nsid, newNsid, newIfindex, error: (e as Error).message });
      return false;
    } finally {
      if (local !== this.rtnl) local.close();
    }
  }

  private withOwnNamespace<T>(fn: (fd: number) => T): T {
    const fd = openSync('/proc/self/ns/net', 'r');
    try {
      return fn(fd);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * After lost events: asks the kernel for every watched device, a batch per turn of the event
   * loop, starting at most every RESYNC_INTERVAL_MS (a flood that overruns the socket again and
   * again gets one check of our devices per interval, not one per overrun).
   */
  private resync(): void {
    if (this.resyncing || this.resyncTimer) {
      this.resyncAgain = this.resyncing;
      return;
    }
    const wait = this.resyncStarted + RESYNC_INTERVAL_MS - Date.now();
    if (wait > 0) {
      this.resyncTimer = setTimeout(() => {
        this.resyncTimer = undefined;
        this.resync();
      }, wait);
      return;
    }
    this.resyncing = true;
    this.resyncStarted = Date.now();
    const keys = [...this.entries.keys()];
    let i = 0;
    const step = (): void => {
      for (const end = Math.min(keys.length, i + RESYNC_BATCH); i < end; i++) {
        const w = this.entries.get(keys[i]!);
        if (w) this.check(keys[i]!, w);
      }
      if (i < keys.length && this.monitor) {
        setImmediate(step);
        return;
      }
      this.resyncing = false;
      if (this.resyncAgain) {
        this.resyncAgain = false;
        this.resync();
      }
    };
    step();
  }

  private check(key: string, w: Watched): void {
    const d = w.device;
    let link: Link;
    try {
      link = this.rtnl.getLink(d.nsid === undefined ? { ifindex: d.ifindex } : { ifindex: d.ifindex, targetNsid: d.nsid });
    } catch (e) {
      if ((e as { code?: string }).code === 'ENODEV') {
        this.entries.delete(key);
        w.onProblem({ kind: 'vanished' });
      } else {
        this.log.warn('link-check-failed', { ifname: d.info.ifname, nsid: d.nsid, error: (e as Error).message });
      }
      return;
    }
    this.compare(w, link);
  }
}
