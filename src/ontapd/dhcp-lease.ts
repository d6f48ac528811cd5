/**
 * The IPv4 lease ontapd holds for one device (request ipv4: "dhcp"), for as long as the device's
 * connection lives: a DHCP client (src/dhcp/client.ts) on a UDP socket made in the workload's
 * namespace, bound to the device and port 68 with SO_BROADCAST (no raw socket: every reply is
 * asked for as a broadcast, which is also the only way an ipvlan device, sharing the uplink's MAC,
 * can receive it). What the server grants goes on the device with lifetimes equal to what is left
 * of the lease, so if ontapd dies the kernel removes the address when the lease ends.
 */
import type { Logger } from '../common/log.js';
import { native, type Poller } from '../native/index.js';
import { openLinkSocket } from '../netns/link-udp.js';
import type { RouteSocket } from '../netns/route-socket.js';
import { RouteProtocol } from '../netns/types.js';
import type { Ipv4Info } from '../protocol/messages.js';
import { DhcpClient, realClock, type Clock, type Dropped, type Lease } from '../dhcp/client.js';
import { RequestError } from './errors.js';

/** Datagrams read per readiness callback: a flood of forged replies cannot hold the loop. */
const READS_PER_CALLBACK = 16;
/** Largest DHCP message taken (a jumbo frame's worth); longer ones are truncated and refused. */
const MAX_DATAGRAM = 9000;
/** "Forever" in IFA_CACHEINFO. */
const INFINITY_LIFETIME = 0xffffffff;
/** dropped lines: one per lease at once, then one per so many ms, with the count held back. */
const DROP_LOG_MS = 10_000;

export interface DhcpLeaseTarget {
  /** The workload's network namespace (held by the lease), where the socket and address go. */
  netnsFd: number;
  ifname: string;
  ifindex: number;
  /** chaddr: the device's hardware address. */
  hwaddr: Buffer;
  clientId: Buffer;
  hostname: string | undefined;
  uplink: string;
  /** For log lines. */
  conn: number;
  uid: number;
}

export interface DhcpLeaseDeps {
  /** A route socket inside the workload's namespace (RouteSocket.openInNamespace), closed after use. */
  openRtnl(netnsFd: number): RouteSocket;
  log: Logger;
  clock?: Clock;
  random?: () => number;
  initialRetransmitMs?: number;
}

export class DhcpLease {
  private readonly fd: number;
  private readonly poller: Poller;
  private readonly client: DhcpClient;
  private readonly clock: Clock;
  /** Whether the bound lease's default route is ours (so ours to remove when the lease is lost). */
  private routeAdded = false;
  private boundResolve!: (info: Ipv4Info) => void;
  private boundReject!: (e: RequestError) => void;
  private settled = false;
  private timeout: unknown;
  private dropped = 0;
  private lastDropLog = -Infinity;
  private offeredBy: string | undefined;
  private closed = false;
  private ended: Array<() => void> = [];
  /** Resolves with what went on the device once bound; rejects (unavailable) at the timeout. */
  readonly bound: Promise<Ipv4Info>;

  constructor(private readonly target: DhcpLeaseTarget, timeoutMs: number, private readonly deps: DhcpLeaseDeps) {
    this.clock = deps.clock ?? realClock;
    this.bound = new Promise<Ipv4Info>((resolve, reject) => {
      this.boundResolve = resolve;
      this.boundReject = reject;
    });
    // Nobody may await it (the caller left first): never an unhandled rejection.
    this.bound.catch(() => undefined);
    this.fd = openLinkSocket({ netnsFd: target.netnsFd, family: 4, ifname: target.ifname, ifindex: target.ifindex, port: 68, broadcast: true });
    const nb = native();
    this.client = new DhcpClient(
      {
        chaddr: target.hwaddr, clientId: target.clientId, hostname: target.hostname,
        random: deps.random ?? Math.random,
        ...(deps.initialRetransmitMs !== undefined ? { initialRetransmitMs: deps.initialRetransmitMs } : {}),
      },
      {
        send: (packet, to) => {
          if (this.closed) return;
          try {
            // -1 (EAGAIN): the retransmission will go instead.
            nb.sendInet(this.fd, packet, 4, to === 'broadcast' ? '255.255.255.255' : to, 67, 0);
          } catch (e) {
            this.deps.log.debug('dhcp-send-failed', { conn: target.conn, ifname: target.ifname, error: (e as Error).message });
          }
        },
      },
      {
        bound: (lease) => this.onBound(lease),
        renewed: (lease) => this.onRenewed(lease),
        lost: (why, lease, message) => this.onLost(why, lease, message),
        dropped: (d) => this.onDropped(d),
        offered: (server) => (this.offeredBy = server),
      },
      this.clock,
    );
    this.poller = nb.poll(this.fd, (err) => {
      if (err) {
        this.deps.log.warn('dhcp-socket-error', { conn: target.conn, ifname: target.ifname, error: err.message });
        return;
      }
      for (let i = 0; i < READS_PER_CALLBACK && !this.closed; i++) {
        let d;
        try {
          d = nb.recvInet(this.fd, MAX_DATAGRAM);
        } catch {
          return;
        }
        if (d === null) return;
        if (d.sourcePort !== 67) {
          // Servers and relays send from 67, a port below 1024: a process of the workload (which
          // can reach this socket with a broadcast of its own) cannot, unless it holds
          // CAP_NET_BIND_SERVICE there, and then it may set any address itself anyway.
          this.onDropped({ reason: 'not-ours', detail: `source port ${d.sourcePort}, not 67`, from: d.source });
          continue;
        }
        if (d.truncated) {
          this.onDropped({ reason: 'undecodable', detail: `datagram: longer than ${MAX_DATAGRAM} bytes`, from: d.source });
          continue;
        }
        this.client.receive(d.data, d.source);
      }
    });
    this.poller.start(true, false);
    this.timeout = this.clock.setTimeout(() => this.onTimeout(timeoutMs), timeoutMs);
    this.client.start();
  }

  /** Ends the lease: DHCPRELEASE when an address is held, socket and timers gone. The device is deleted after. */
  release(): void {
    if (this.closed) return;
    this.client.release();
    this.close();
  }

  /** Runs fn once the lease is over (released, failed, or timed out). */
  onEnd(fn: () => void): void {
    if (this.closed) fn();
    else this.ended.push(fn);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fn of this.ended.splice(0)) fn();
    this.client.stop();
    this.clock.clearTimeout(this.timeout);
    this.poller.close();
    native().close(this.fd);
    if (!this.settled) {
      this.settled = true;
      this.boundReject(new RequestError('internal', 'the lease ended before an address was bound'));
    }
  }

  private onTimeout(timeoutMs: number): void {
    if (this.settled) return;
    const s = timeoutMs / 1000;
    const message = this.offeredBy !== undefined
      ? `DHCP server ${this.offeredBy} offered an address on ${this.target.uplink} but did not acknowledge it within ${s} s`
      : `no DHCP server answered on ${this.target.uplink} within ${s} s`;
    this.settled = true;
    this.boundReject(new RequestError('unavailable', message, 'ipv4'));
    this.close();
  }

  /** Seconds the address may still be used, counted from now (the lease started at the REQUEST). */
  private remaining(): number {
    const end = this.client.expiresAt;
    if (end === undefined) return 0;
    if (!Number.isFinite(end)) return INFINITY_LIFETIME;
    return Math.max(1, Math.floor((end - this.clock.now()) / 1000));
  }

  private info(lease: Lease, route: boolean): Ipv4Info {
    return {
      address: lease.address, prefixLength: lease.prefixLength, defaultRoute: route, dns: [...lease.dns], leaseSeconds: Number.isFinite(lease.leaseSeconds) ? lease.leaseSeconds : INFINITY_LIFETIME, server: lease.serverId,
      ...(lease.gateway !== undefined ? { gateway: lease.gateway } : {}),
      ...(lease.domain !== undefined ? { domain: lease.domain } : {}),
    };
  }

  private withRtnl<T>(fn: (rtnl: RouteSocket) => T): T {
    const rtnl = this.deps.openRtnl(this.target.netnsFd);
    try {
      return fn(rtnl);
    } finally {
      rtnl.close();
    }
  }

  private putAddress(rtnl: RouteSocket, lease: Lease): void {
    const lifetime = this.remaining();
    const broadcast = broadcastOf(lease.address, lease.prefixLength);
    // Replace: the renewal's new lifetimes, and the first time whatever a hostile holder put there.
    rtnl.replaceAddress({
      ifindex: this.target.ifindex, family: 4, address: lease.address, prefixLength: lease.prefixLength,
      ...(broadcast !== undefined ? { broadcast } : {}),
      validSeconds: lifetime, preferredSeconds: lifetime,
    });
  }

  private onBound(lease: Lease): void {
    if (this.closed) return;
    let route = false;
    try {
      this.withRtnl((rtnl) => {
        this.putAddress(rtnl, lease);
        if (lease.gateway !== undefined) {
          // EEXIST: the namespace has a default route already (any gateway, any metric), which
          // stays. Not a dump first: the caller's routing table may be as long as it likes.
          try {
            rtnl.addRoute({ family: 4, dstLength: 0, gateway: lease.gateway, oif: this.target.ifindex, protocol: RouteProtocol.dhcp });
            route = true;
          } catch (e) {
            if ((e as { code?: string }).code !== 'EEXIST') throw e;
          }
        }
      });
    } catch (e) {
      this.deps.log.error('dhcp-apply-failed', { conn: this.target.conn, ifname: this.target.ifname, address: lease.address, error: (e as Error).message });
      if (!this.settled) {
        this.settled = true;
        this.boundReject(new RequestError('internal', `could not put ${lease.address}/${lease.prefixLength} on the device: ${(e as Error).message}`));
      }
      this.release();
      return;
    }
    this.routeAdded = route;
    this.deps.log.info('dhcp-bound', {
      conn: this.target.conn, uid: this.target.uid, ifname: this.target.ifname, address: `${lease.address}/${lease.prefixLength}`,
      gateway: lease.gateway, server: lease.serverId, lease_s: lease.leaseSeconds, route,
    });
    if (!this.settled) {
      this.settled = true;
      this.boundResolve(this.info(lease, route));
    }
  }

  private onRenewed(lease: Lease): void {
    if (this.closed) return;
    try {
      this.withRtnl((rtnl) => this.putAddress(rtnl, lease));
      this.deps.log.debug('dhcp-renewed', { conn: this.target.conn, ifname: this.target.ifname, address: lease.address, lease_s: lease.leaseSeconds });
    } catch (e) {
      this.deps.log.warn('dhcp-apply-failed', { conn: this.target.conn, ifname: this.target.ifname, address: lease.address, error: (e as Error).message });
    }
  }

  private onLost(why: 'nak' | 'expired', lease: Lease, message: string | undefined): void {
    if (this.closed) return;
    const route = this.routeAdded;
    this.routeAdded = false;
    // Each on its own: a route the workload removed itself must not keep the address there.
    // Gone already (the kernel ends an address at its valid lifetime): nothing left to remove.
    const attempt = (what: string, fn: (rtnl: RouteSocket) => void): void => {
      try {
        this.withRtnl(fn);
      } catch (e) {
        this.deps.log.debug('dhcp-remove-failed', { conn: this.target.conn, ifname: this.target.ifname, what, error: (e as Error).message });
      }
    };
    if (route && lease.gateway !== undefined) {
      attempt('route', (rtnl) => rtnl.deleteRoute({ family: 4, dstLength: 0, gateway: lease.gateway!, oif: this.target.ifindex, protocol: RouteProtocol.dhcp }));
    }
    attempt('address', (rtnl) => rtnl.deleteAddress({ ifindex: this.target.ifindex, family: 4, address: lease.address, prefixLength: lease.prefixLength }));
    this.deps.log.warn('dhcp-lost', {
      conn: this.target.conn, uid: this.target.uid, ifname: this.target.ifname, address: lease.address, reason: why,
      server: lease.serverId, message, effect: 'address and route removed; asking again (DISCOVER)',
    });
  }

  private onDropped(d: Dropped): void {
    this.dropped++;
    const now = this.clock.now();
    if (now - this.lastDropLog < DROP_LOG_MS) return;
    this.lastDropLog = now;
    this.deps.log.warn('dhcp-dropped', { conn: this.target.conn, ifname: this.target.ifname, reason: d.reason, rule: d.detail, from: d.from, count: this.dropped });
    this.dropped = 0;
  }
}

/** The subnet's broadcast address (what `ip addr add A/N brd +` puts there). */
export function broadcastOf(address: string, prefixLength: number): string | undefined {
  if (prefixLength >= 31) return undefined;
  const n = address.split('.').reduce((a, b) => (a << 8) | Number(b), 0) >>> 0;
  const b = (n | (0xffffffff >>> prefixLength)) >>> 0;
  return [b >>> 24, (b >>> 16) & 255, (b >>> 8) & 255, b & 255].join('.');
}
