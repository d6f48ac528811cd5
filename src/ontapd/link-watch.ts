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
import { RouteMonitor, type RouteEvent } from '../netns/route-monitor.js';
import type { RouteSocket } from '../netns/route-socket.js';
import type { Link } from '../netns/types.js';
import type { Logger } from '../common/log.js';
import type { Device } from './devices.js';

/** What a holder did to a watched device. */
export type LinkProblem =
  /** The hardware address changed; `restored` if ontapd put its own back. */
  | { kind: 'address-changed'; address: string | undefined; restored: boolean }
  /** The kernel reported the device deleted (by someone else than ontapd's release). */
  | { kind: 'deleted' }
  /** Gone from where it was while events were lost (an overrun), or another device has its ifindex now. */
  | { kind: 'vanished' };

export interface Watched {
  device: Device;
  /**
   * Whether the hardware address is ontapd's to keep: not for the ipvlan family and passthru,
   * whose address follows the uplink's.
   */
  guardAddress: boolean;
  onProblem(problem: LinkProblem): void;
}

/** Devices checked per turn of the event loop after an overrun. */
const RESYNC_BATCH = 64;
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
  /** Counters for logs and tests. */
  readonly stats = { overruns: 0, restored: 0 };

  private constructor(private readonly rtnl: RouteSocket, private readonly log: Logger) {}

  static open(rtnl: RouteSocket, log: Logger): LinkWatch {
    const w = new LinkWatch(rtnl, log);
    const monitor = RouteMonitor.open({
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
    this.monitor?.close();
    this.monitor = undefined;
    this.entries.clear();
  }

  private onEvent(e: RouteEvent): void {
    switch (e.type) {
      case 'newlink': {
        const w = this.entries.get(keyOf(e.nsid, e.link.ifindex));
        if (w) this.compare(w, e.link);
        break;
      }
      case 'dellink': {
        const key = keyOf(e.nsid, e.link.ifindex);
        const w = this.entries.get(key);
        if (!w) break;
        this.entries.delete(key);
        w.onProblem({ kind: 'deleted' });
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

  private compare(w: Watched, link: Link): void {
    const d = w.device;
    if (link.kind !== d.info.type) {
      // The ifindex belongs to another device now: ours went while we were not looking.
      this.entries.delete(keyOf(d.nsid, d.ifindex));
      w.onProblem({ kind: 'vanished' });
      return;
    }
    if (!w.guardAddress || link.address === d.info.hwaddr) return;
    const restored = this.restore(d);
    w.onProblem({ kind: 'address-changed', address: link.address, restored });
  }

  /**
   * Puts ontapd's address back. macvlan takes the device out of its port's address table first
   * and then waits for an RCU grace period under rtnl_lock (~13 ms here) before it re-adds it, so
   * frames for the taken address stop reaching the device as soon as the kernel starts on the
   * request; the wait runs on the thread pool (own namespace) so the event loop goes on serving.
   * A device elsewhere needs a socket made in its namespace: there the request is synchronous.
   */
  private restore(d: Device): boolean {
    const started = process.hrtime.bigint();
    const done = (e?: unknown): void => {
      if (e === undefined) {
        this.stats.restored++;
        this.log.debug('address-restored', { ifname: d.info.ifname, nsid: d.nsid, us: Number((process.hrtime.bigint() - started) / 1000n) });
      } else if ((e as { code?: string }).code !== 'ENODEV') {
        this.log.warn('restore-failed', { ifname: d.info.ifname, nsid: d.nsid, error: (e as Error).message });
      }
    };
    if (d.nsid === undefined) {
      this.rtnl.setLinkAsync({ ifindex: d.ifindex }, { address: d.info.hwaddr }).then(() => done(), done);
      return true;
    }
    if (d.netnsFd === undefined) return false;
    try {
      this.rtnl.setLink({ ifindex: d.ifindex, netnsFd: d.netnsFd }, { address: d.info.hwaddr });
    } catch (e) {
      done(e);
      return false;
    }
    done();
    return true;
  }

  /** After lost events: asks the kernel for every watched device, a batch per turn of the event loop. */
  private resync(): void {
    if (this.resyncing) {
      this.resyncAgain = true;
      return;
    }
    this.resyncing = true;
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
