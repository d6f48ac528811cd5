import type { RouteSocket } from '../netns/route-socket.js';
import type { Link } from '../netns/types.js';
import type { Logger } from '../common/log.js';
import { fstatSync } from 'node:fs';
import { native } from '../native/index.js';
import { GROUP_LIVE, GROUP_RELEASE, type Device } from './devices.js';

const OWN = 'own';
export const BATCH_INTERVAL_MS = 40;
/**
 * A named device loses its alias when it is released, and joins the release group only this much
 * later: ontap-zone's mDNS responder sees the alias go and says goodbye for the name on the device
 * while it is still there (RFC 6762 10.1; without it peers keep the name for 120 s). ontap-zone
 * answers within a few milliseconds; the rest is room for a loaded machine.
 */
export const GOODBYE_WINDOW_MS = 250;

function keyOf(nsid: number | undefined): string {
  return nsid === undefined ? OWN : String(nsid);
}
function nsidOf(key: string): number | undefined {
  return key === OWN ? undefined : Number(key);
}

/** Closes the caller's namespace descriptor a device held, once. */
export function closeNamespace(device: Device): void {
  if (device.netnsFd !== undefined) native().close(device.netnsFd);
  device.netnsFd = undefined;
}

/**
 * Whether `link`, dumped from the namespace with `nsid` (undefined: our own), hangs off one of our
 * uplinks. IFLA_LINK is an ifindex in the parent's namespace, so the ifindex alone says nothing: two
 * ontapds' uplinks in two namespaces may share it. The parent is in our namespace when the kernel
 * reports no IFLA_LINK_NETNSID for a link of ours (parent beside it), or reports our own self-id
 * for a link elsewhere: IFLA_LINK_NETNSID in a reply is in the requesting socket's frame.
 */
export function onUplink(link: Link, nsid: number | undefined, uplinkIfindexes: ReadonlySet<number>, selfNsid: () => number | undefined): boolean {
  if (link.parentIfindex === undefined || !uplinkIfindexes.has(link.parentIfindex)) return false;
  if (nsid === undefined) return link.linkNetnsid === undefined;
  return link.linkNetnsid !== undefined && link.linkNetnsid === selfNsid();
}

/**
 * Deletes released devices in batches. Deleting links costs an RCU grace period (~17 ms here,
 * plus ~0.5 ms a device) during which rtnl_lock is held and every other rtnetlink request waits,
 * so a release only moves the device into GROUP_RELEASE (cheap), and one RTM_DELLINK per
 * namespace deletes the whole group off the event loop. Deletions start at most once per
 * BATCH_INTERVAL_MS: a client that releases and allocates in a loop would otherwise pay a grace
 * period on every allocation; with the interval, a released device lingers (unusable, in the
 * release group) for at most that long and hundreds go in one grace period.
 */
export class Releaser {
  /** Namespace key -> devices waiting in its release group. */
  private readonly pending = new Map<string, number>();
  private readonly inflight = new Set<string>();
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  /** Namespace key -> devices waiting in its group whose namespace descriptor is still open. */
  private readonly heldNamespaces = new Map<string, Device[]>();
  private lastFlush = 0;
  private idleWaiters: Array<() => void> = [];
  released = 0;

  constructor(private readonly rtnl: RouteSocket, private readonly log: Logger) {}

  /**
   * Moves the device into the release group: now in our own namespace, at the next batch in the
   * caller's (it waits, up, no longer than a released device waited in the group before). `soon`: delete the group without waiting for the
   * batch interval (a device whose holder tampered with it). The caller's namespace descriptor is
   * kept (in device.netnsFd) until the group is deleted: until then the namespace cannot die, so
   * its nsid stays its own, the deletion's RTM_DELLINK events still reach the link watch, and the
   * watch can still follow the device if its holder moves it away meanwhile.
   */
  release(device: Device, soon = false): void {
    if (device.info.name === undefined || soon) {
      this.enqueue(device, soon);
      return;
    }
    // A named device: its alias goes now (one request, through a socket in its namespace: named
    // workloads are few and long-lived next to the leases churned unnamed), the device itself
    // after the goodbye window. Its uid's count was given back already.
    try {
      this.rtnl.setLink({ ifindex: device.ifindex, netnsFd: device.netnsFd }, { alias: '' });
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENODEV') this.log.warn('release-unname-failed', { ifname: device.info.ifname, nsid: device.nsid, error: (e as Error).message });
    }
    this.goodbyes++;
    const key = `${device.info.uplink}/${device.info.name}`;
    const timer = setTimeout(() => {
      this.goodbyes--;
      this.inWindow.delete(key);
      this.enqueue(device, false);
    }, GOODBYE_WINDOW_MS);
    this.inWindow.set(key, { device, timer });
  }

  /** Named devices waiting out their goodbye window (idle() waits for them too). */
  private goodbyes = 0;
  /** uplink/name -> the released device of that name in its goodbye window. */
  private readonly inWindow = new Map<string, { device: Device; timer: NodeJS.Timeout }>();
  /** Released devices someone waits to see deleted (expedite). */
  private readonly deletedWaiters = new Map<Device, () => void>();
  /** Namespace key -> devices of our own namespace moved into its release group, not yet deleted. */
  private readonly ownMoved = new Map<string, Device[]>();

  /**
   * A workload starting again under its name: the released device of that name still in its
   * goodbye window (its MAC, derived from the name, is the new device's) is deleted now, without
   * a goodbye (the name is coming back). Resolves once it is gone; at once if there is none.
   */
  expedite(uplink: string, name: string): Promise<void> {
    const key = `${uplink}/${name}`;
    const w = this.inWindow.get(key);
    if (w) {
      clearTimeout(w.timer);
      this.inWindow.delete(key);
      this.goodbyes--;
      const gone = new Promise<void>((resolve) => this.deletedWaiters.set(w.device, resolve));
      this.enqueue(w.device, true);
      return gone;
    }
    // Past its window, queued for the batch or being deleted: wait for that, sooner.
    const queued = this.namedQueued.get(key);
    if (!queued) return Promise.resolve();
    const gone = new Promise<void>((resolve) => this.deletedWaiters.set(queued, resolve));
    this.schedule(true);
    return gone;
  }

  /** uplink/name -> a named device queued for deletion (after its window), until it is deleted. */
  private readonly namedQueued = new Map<string, Device>();

  private deleted(devices: readonly Device[]): void {
    for (const d of devices) {
      const key = `${d.info.uplink}/${d.info.name}`;
      if (d.info.name !== undefined && this.namedQueued.get(key) === d) this.namedQueued.delete(key);
      const resolve = this.deletedWaiters.get(d);
      if (resolve) {
        this.deletedWaiters.delete(d);
        resolve();
      }
    }
  }

  private enqueue(device: Device, soon: boolean): void {
    if (device.info.name !== undefined) this.namedQueued.set(`${device.info.uplink}/${device.info.name}`, device);
    const key = keyOf(device.nsid);
    if (device.netnsFd === undefined) {
      // In our own namespace: moved now, by our own socket.
      if (!this.moveToRelease(this.rtnl, device)) {
        this.deleted([device]);
        return;
      }
      this.ownMoved.set(key, [...(this.ownMoved.get(key) ?? []), device]);
    } else {
      // In the caller's namespace: moved at the batch, through one socket opened there for all
      // of the namespace's devices (opening one costs a thread that setns()es: 0.35 ms of the
      // event loop per release in the combined hostile run, a third of its busy time).
      this.heldNamespaces.set(key, [...(this.heldNamespaces.get(key) ?? []), device]);
    }
    this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
    this.schedule(soon);
  }

  /** RTM_SETLINK into GROUP_RELEASE; false (logged, namespace closed) when the device is not there. */
  private moveToRelease(rtnl: RouteSocket, device: Device): boolean {
    try {
      rtnl.setLink({ ifindex: device.ifindex }, { group: GROUP_RELEASE });
      return true;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ENODEV') {
        // Someone deleted the link (or moved it away): nothing of ours is left to delete here.
        this.log.info('release-gone', { ifname: device.info.ifname, nsid: device.nsid });
      } else {
        this.log.warn('release-failed', { ifname: device.info.ifname, nsid: device.nsid, error: (e as Error).message });
      }
      closeNamespace(device);
      return false;
    }
  }

  /**
   * Moves the devices released in another namespace into its release group, through one socket
   * opened inside it and closed before this returns (nothing else runs meanwhile, so nothing in
   * that namespace can talk to the socket between requests). The devices share an nsid, and each
   * holds its namespace open, so while they wait the nsid names that one namespace; each
   * device's descriptor is still checked against the socket's (nsfs gives a namespace one inode).
   * Returns the devices moved.
   */
  private moveBatch(devices: Device[]): Device[] {
    const moved: Device[] = [];
    let socket: { rtnl: RouteSocket; ino: bigint; dev: bigint } | undefined;
    try {
      for (const device of devices) {
        try {
          if (device.netnsFd === undefined) throw new Error('its namespace descriptor was closed');
          const { dev, ino } = fstatSync(device.netnsFd, { bigint: true });
          if (socket !== undefined && (socket.dev !== dev || socket.ino !== ino)) {
            socket.rtnl.close();
            socket = undefined;
          }
          socket ??= { rtnl: this.rtnl.openInNamespace(device.netnsFd), dev, ino };
        } catch (e) {
          this.log.warn('release-failed', { ifname: device.info.ifname, nsid: device.nsid, error: (e as Error).message });
          closeNamespace(device);
          continue;
        }
        if (this.moveToRelease(socket.rtnl, device)) moved.push(device);
      }
    } finally {
      socket?.rtnl.close();
    }
    return moved;
  }

  /** Deletes what waits in the release groups without waiting for the batch interval. */
  flushSoon(): void {
    if (this.pending.size > 0) this.schedule(true);
  }

  private schedule(soon = false): void {
    if (this.scheduled) {
      if (!soon || this.timer === undefined) return;
      clearTimeout(this.timer);
      this.timer = undefined;
      setImmediate(() => this.run());
      return;
    }
    this.scheduled = true;
    const wait = soon ? 0 : this.lastFlush + BATCH_INTERVAL_MS - Date.now();
    if (wait <= 0) setImmediate(() => this.run());
    else this.timer = setTimeout(() => this.run(), wait);
  }

  private run(): void {
    if (!this.scheduled) return;
    this.scheduled = false;
    this.timer = undefined;
    this.flush();
  }

  private flush(): void {
    this.lastFlush = Date.now();
    for (const key of [...this.pending.keys()]) {
      if (this.inflight.has(key)) continue;
      let count = this.pending.get(key)!;
      this.pending.delete(key);
      const released = this.heldNamespaces.get(key) ?? [];
      this.heldNamespaces.delete(key);
      const held = released.length > 0 ? this.moveBatch(released) : released;
      const own = this.ownMoved.get(key) ?? [];
      this.ownMoved.delete(key);
      this.deleted(released.filter((d) => !held.includes(d))); // not there any more
      count -= released.length - held.length;
      if (count === 0) continue; // none was there any more (logged, closed)
      this.inflight.add(key);
      const started = process.hrtime.bigint();
      this.rtnl
        .deleteGroupAsync(GROUP_RELEASE, nsidOf(key))
        .then(() => {
          this.released += count;
          this.log.debug('release-batch', { nsid: key, devices: count, ms: Number(process.hrtime.bigint() - started) / 1e6 });
        })
        .catch((e: unknown) => {
          // ENODEV: nothing left in the group (a namespace that died took its devices along).
          if ((e as { code?: string }).code !== 'ENODEV' && (e as { code?: string }).code !== 'EINVAL') {
            this.log.warn('release-failed', { nsid: key, error: (e as Error).message });
          }
        })
        .finally(() => {
          for (const device of held) closeNamespace(device);
          this.deleted([...held, ...own]);
          this.inflight.delete(key);
          if (this.pending.size > 0) this.schedule();
          else if (this.inflight.size === 0) this.wakeIdle();
        });
    }
    if (this.pending.size === 0 && this.inflight.size === 0) this.wakeIdle();
  }

  private wakeIdle(): void {
    if (this.goodbyes > 0) return; // they come back through enqueue(), and the batch wakes us then
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when every released device has been deleted. */
  idle(): Promise<void> {
    if (this.pending.size === 0 && this.inflight.size === 0 && !this.scheduled && this.goodbyes === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Deletes what an earlier ontapd left behind on these uplinks: every connection of that ontapd
   * died with it, so every device it made has lost its owner. Another namespace can only be
   * addressed by nsid here (no descriptor survives a restart), and RTM_SETLINK cannot address a
   * namespace by nsid, so there the marked groups are deleted whole when they hold only our
   * devices, and device by device otherwise. `uplinkIfindexes` are ifindexes in our namespace.
   */
  reclaim(uplinkIfindexes: Set<number>): number {
    let count = 0;
    const namespaces: Array<number | undefined> = [undefined, ...this.rtnl.dumpNsids().map((n: { nsid: number }) => n.nsid)];
    for (const nsid of namespaces) {
      let marked;
      try {
        marked = this.rtnl.dumpLinks({ targetNsid: nsid }).filter((l) => l.group === GROUP_LIVE || l.group === GROUP_RELEASE);
      } catch (e) {
        this.log.warn('reclaim-dump-failed', { nsid, error: (e as Error).message });
        continue;
      }
      // Asked after the dump: reporting a link whose parent is here is what gives us a self-id.
      let self: number | undefined;
      const selfNsid = (): number | undefined => (self ??= this.rtnl.selfNsid());
      const ours = marked.filter((l) => onUplink(l, nsid, uplinkIfindexes, selfNsid));
      if (ours.length === 0) continue;
      for (const link of ours) this.log.info('reclaim', { ifname: link.ifname, ifindex: link.ifindex, nsid, alias: link.alias });
      try {
        if (nsid === undefined) {
          for (const link of ours) this.rtnl.setLink({ ifindex: link.ifindex }, { group: GROUP_RELEASE });
          this.rtnl.deleteGroup(GROUP_RELEASE);
        } else if (ours.length === marked.length) {
          for (const group of new Set(ours.map((l) => l.group!))) this.rtnl.deleteGroup(group, nsid);
        } else {
          for (const link of ours) this.rtnl.deleteLink({ ifindex: link.ifindex, targetNsid: nsid });
        }
        count += ours.length;
      } catch (e) {
        this.log.warn('reclaim-delete-failed', { nsid, error: (e as Error).message });
      }
    }
    return count;
  }
}
