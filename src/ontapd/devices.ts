import { writeFileSync, closeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { RouteSocket } from '../netns/route-socket.js';
import type { LinkKindData, Link } from '../netns/types.js';
import { native } from '../native/index.js';
import {
  isIpvlanFamily, isTapType, type AllocateRequest, type DeviceInfo, type DeviceType,
} from '../protocol/messages.js';
import { RequestError } from './errors.js';
import { stableMac, stableSecret } from './identity.js';
import { openTap } from './tap.js';

/** IFLA_GROUP of every live device ontapd made: how a restarted ontapd finds what it left behind. */
export const GROUP_LIVE = 0x6f746170; // "otap"
/** Devices being released: one RTM_DELLINK per namespace deletes them all in one RCU grace period. */
export const GROUP_RELEASE = GROUP_LIVE + 1;

export type Family = 'ipvlan' | 'macvlan';

export function familyOf(type: DeviceType): Family {
  return isIpvlanFamily(type) ? 'ipvlan' : 'macvlan';
}

/** One device handed out: keyed by (nsid, ifindex) as the kernel reported them. */
export interface Device {
  info: DeviceInfo;
  /** undefined: the device lives in ontapd's own namespace. */
  nsid: number | undefined;
  /**
   * The caller's namespace, held for the lease: releasing needs a netlink socket inside it
   * (RTM_SETLINK with a target nsid would move the link instead of changing it). Owned by the lease,
   * then by the release until the release group is deleted (closeNamespace()).
   */
  netnsFd: number | undefined;
  ifindex: number;
  family: Family;
}

export interface AllocateContext {
  uplink: string;
  uplinkIfindex: number;
  /** The caller's network namespace (verified against its credentials), for ipvlan/macvlan. */
  netnsFd: number | undefined;
  /** The caller's uid: a named device's MAC and stable_secret are the owner's (identity.ts). */
  owner: number;
}

/** Where the kernel said no, phrased for the caller. */
function explain(e: unknown, req: AllocateRequest, ctx: AllocateContext): RequestError {
  const code = (e as { code?: string }).code;
  const extack = (e as { extack?: string }).extack;
  const detail = extack ? `: ${extack}` : '';
  switch (code) {
    case 'EBUSY':
      return new RequestError('conflict',
        `uplink ${ctx.uplink} already carries ${familyOf(req.type) === 'ipvlan' ? 'macvlan/macvtap' : 'ipvlan/ipvtap'} devices (not made by ontapd?): one uplink cannot carry ipvlan and macvlan at once${detail}`);
    case 'EOPNOTSUPP':
    case 'ENOENT':
      return new RequestError('unavailable', `this kernel cannot create ${req.type} devices (module missing?)${detail}`, 'type');
    case 'ENODEV':
      return new RequestError('unavailable', `uplink ${ctx.uplink} is gone${detail}`);
    case 'EADDRINUSE':
      return new RequestError('conflict',
        `a device with this workload's address is already on uplink ${ctx.uplink}: is a workload named "${req.name ?? ''}" running already?${detail}`, 'name');
    case 'EPERM':
    case 'EACCES':
      // Say which step was refused: a sandbox missing a capability shows up here.
      return new RequestError('internal', `the kernel refused ontapd: ${(e as Error).message}${detail}`);
    default:
      return new RequestError('internal', `${(e as Error).message ?? String(e)}`);
  }
}

/**
 * Creates devices. ipvlan/macvlan are created directly in the caller's namespace with their final
 * name (IFLA_NET_NS_FD in the same RTM_NEWLINK): no half set-up device is ever visible and nothing
 * is renamed. ipvtap/macvtap stay in ontapd's namespace and leave as open /dev/tapN descriptors.
 */
export class DeviceFactory {
  private readonly prefix = `ot${randomBytes(2).toString('hex')}`;
  private counter = 0;

  constructor(private readonly rtnl: RouteSocket, private readonly key: Buffer) {}

  /** Names unique in ontapd's namespace too, where the kernel checks them (EEXIST). */
  private nextName(): string {
    this.counter = (this.counter + 1) % 36 ** 9;
    return this.prefix + this.counter.toString(36);
  }

  async allocate(req: AllocateRequest, ctx: AllocateContext): Promise<{ device: Device; fds: number[] }> {
    return isTapType(req.type) ? this.allocateTap(req, ctx) : this.allocateInNamespace(req, ctx);
  }

  private kindData(req: AllocateRequest): LinkKindData {
    if (isIpvlanFamily(req.type)) {
      return {
        kind: req.type,
        mode: (req.mode ?? 'l2') as 'l2' | 'l3' | 'l3s',
        flag: (req.flag ?? 'bridge') as 'bridge' | 'private' | 'vepa',
      };
    }
    return { kind: req.type as 'macvlan' | 'macvtap', mode: (req.mode ?? 'bridge') as 'bridge' };
  }

  private describe(req: AllocateRequest, ctx: AllocateContext, link: Link, nsid: number | undefined, queues: number): DeviceInfo {
    const data = this.kindData(req);
    const info: DeviceInfo = {
      type: req.type,
      ifname: link.ifname,
      ifindex: link.ifindex,
      hwaddr: link.address ?? '',
      mtu: link.mtu ?? 0,
      queues,
      vnetHdr: isTapType(req.type),
      mode: data.kind === 'veth' ? '' : data.mode,
      uplink: ctx.uplink,
    };
    if (nsid !== undefined) info.nsid = nsid;
    if ('flag' in data) info.flag = data.flag;
    if (req.name !== undefined) info.name = req.name;
    return info;
  }

  private async allocateInNamespace(req: AllocateRequest, ctx: AllocateContext) {
    const netnsFd = ctx.netnsFd;
    if (netnsFd === undefined) throw new RequestError('bad-request', `${req.type} needs the caller's network namespace descriptor`);
    let nsid: number;
    try {
      nsid = this.rtnl.ensureNsid(netnsFd);
    } catch (e) {
      throw explain(e, req, ctx);
    }
    const ifname = this.nextName();
    const named = req.name !== undefined;
    const data = this.kindData(req);
    try {
      this.rtnl.createLink({
        ifname,
        data,
        parentIfindex: ctx.uplinkIfindex,
        netnsFd,
        group: GROUP_LIVE,
        // A named device comes up only after its stable secret is in place, so its first
        // link-local address is already the RFC 7217 one.
        up: !named,
        ...(named && data.kind === 'macvlan' ? { address: stableMac(this.key, ctx.owner, req.name!) } : {}),
      });
    } catch (e) {
      throw explain(e, req, ctx);
    }
    try {
      if (named) {
        // Writing a link's stable_secret also switches it to IN6_ADDR_GEN_MODE_STABLE_PRIVACY.
        native().writeFileInNetns(netnsFd, `/proc/sys/net/ipv6/conf/${ifname}/stable_secret`, stableSecret(this.key, ctx.owner, req.name!));
        this.rtnl.setLink({ ifname, netnsFd }, { alias: req.name!, up: true });
      }
      const link = this.rtnl.getLink({ ifname, targetNsid: nsid });
      const device: Device = {
        info: this.describe(req, ctx, link, nsid, 1), nsid, netnsFd, ifindex: link.ifindex, family: familyOf(req.type),
      };
      return { device, fds: [] };
    } catch (e) {
      this.deleteQuietly({ ifname, targetNsid: nsid });
      throw explain(e, req, ctx);
    }
  }

  private async allocateTap(req: AllocateRequest, ctx: AllocateContext) {
    const ifname = this.nextName();
    const queues = req.queues ?? 1;
    const data = this.kindData(req);
    const named = req.name !== undefined;
    try {
      this.rtnl.createLink({
        ifname,
        data,
        parentIfindex: ctx.uplinkIfindex,
        group: GROUP_LIVE,
        up: false,
        // The guest's neighbour discovery needs the multicast the uplink receives.
        allmulti: true,
        numQueues: queues,
        ...(named ? { alias: req.name! } : {}),
        ...(named && data.kind === 'macvtap' ? { address: stableMac(this.key, ctx.owner, req.name!) } : {}),
      });
    } catch (e) {
      throw explain(e, req, ctx);
    }
    let fds: number[] = [];
    try {
      // The host must not configure addresses on the host side of a guest's tap: with
      // disable_ipv6 set before the link goes up, no link-local address is ever generated.
      disableIpv6(ifname);
      this.rtnl.setLink({ ifname }, { up: true });
      const link = this.rtnl.getLink({ ifname });
      fds = openTap(ifname, queues);
      const device: Device = {
        info: this.describe(req, ctx, link, undefined, queues), nsid: undefined, netnsFd: undefined, ifindex: link.ifindex, family: familyOf(req.type),
      };
      return { device, fds };
    } catch (e) {
      for (const fd of fds) closeSync(fd);
      this.deleteQuietly({ ifname });
      throw e instanceof RequestError ? e : explain(e, req, ctx);
    }
  }

  private deleteQuietly(sel: { ifname: string; targetNsid?: number }): void {
    try {
      this.rtnl.deleteLink(sel);
    } catch {
      // already gone
    }
  }
}

function disableIpv6(ifname: string): void {
  try {
    writeFileSync(`/proc/sys/net/ipv6/conf/${ifname}/disable_ipv6`, '1');
  } catch (e) {
    // No IPv6 in this kernel at all: nothing to disable.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
