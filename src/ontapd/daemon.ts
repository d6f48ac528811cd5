import { statSync } from 'node:fs';
import { native, type Poller, type PeerCred } from '../native/index.js';
import type { RouteSocket } from '../netns/route-socket.js';
import type { Logger } from '../common/log.js';
import {
  MAX_REQUEST_BYTES, PROTOCOL_VERSION, isTapType,
  type AllocateRequest, type ProtocolError, type Reply,
} from '../protocol/messages.js';
import { parseRequest } from './request-schema.js';
import { RequestError } from './errors.js';
import { DeviceFactory, familyOf, type Device, type Family } from './devices.js';
import { Releaser, closeNamespace } from './releaser.js';
import { LimitedLog, leaseRate } from './limited-log.js';
import { NameRegistry } from './names.js';
import { defaultUplinkConfig, withUplinkSettings, type UplinkConfig } from './uplink-policy.js';
import { bindNetns } from './netns-binding.js';
import { LinkWatch, guardsAddress, type LinkProblem } from './link-watch.js';
import { Cooldown } from './cooldown.js';
import { ownedByOurUserNamespace } from './namespace-owner.js';
import type { PortSocket } from './listener.js';
import { AcceptPause } from './accept-pause.js';
import { CloseBacklog, closeConnection, closeForeign, closeOwn, UNKNOWN_PEER_LANE } from './closer.js';
import { DhcpLease } from './dhcp-lease.js';
import { dhcpClientId } from './identity.js';
import { parseMac } from '../netns/rtnl/link.js';
import type { Ipv4Info } from '../protocol/messages.js';

export interface DaemonLimits {
  /** Devices held at once, all callers together. */
  maxDevices: number;
  /** Devices held at once by one uid. */
  maxPerUid: number;
  /** Connections that have not yet sent their request. */
  maxPending: number;
  /** The same, per uid. */
  maxPendingPerUid: number;
  /**
   * DHCP leases (ipv4: "dhcp") held at once by one uid other than root: each takes an address from
   * the LAN's pool, so one uid's workloads must not be able to empty it (DHCP starvation).
   */
  maxLeasesPerUid: number;
  /** Milliseconds a DHCP lease (ipv4: "dhcp") has to be bound before the request fails. */
  dhcpTimeoutMs: number;
  /** Milliseconds a connection has to send its request. */
  requestTimeoutMs: number;
}

export const defaultLimits: DaemonLimits = { maxDevices: 4096, maxPerUid: 256, maxPending: 1024, maxPendingPerUid: 64, requestTimeoutMs: 5000, dhcpTimeoutMs: 10000, maxLeasesPerUid: 32 };

/** The administrator's rules beyond the caps (ontapd's options). */
export interface DaemonPolicy {
  /** Workload names reserved for one uid each (--reserve NAME=UID). */
  reserved: ReadonlyMap<string, number>;
  /** What the uplinks serve (--family, --ipvlan-mode, --ipvlan-flag): not the first caller's choice. */
  uplink: UplinkConfig;
}

export const defaultPolicy: DaemonPolicy = { reserved: new Map(), uplink: defaultUplinkConfig };

type ConnState = 'awaiting' | 'allocating' | 'leased' | 'closed';

interface Connection {
  id: number;
  fd: number;
  port: Port;
  peer: PeerCred;
  poller: Poller;
  state: ConnState;
  timer: NodeJS.Timeout | undefined;
  device: Device | undefined;
  refusedExtra: boolean;
  /** Whether the lease's allocate line was written (its release line is written then too). */
  leaseLogged: boolean;
  /** Whether the connection still counts as waiting (pending): until it holds a device. */
  pending: boolean;
  /** ipv4: "dhcp": the IPv4 lease held for the device. */
  dhcp: DhcpLease | undefined;
}

interface Port {
  socket: PortSocket;
  poller: Poller;
  /** Backs accept off when it fails (out of descriptors). */
  pause: AcceptPause;
}

/** What one uplink carries now: the kernel makes ipvlan mode a property of the parent. */
interface UplinkUse {
  family: Family;
  mode: string;
  flag: string | undefined;
  count: number;
}

/** SCM_MAX_FD: the kernel never drops descriptors for lack of room (it would close them on our thread). */
const MAX_RECEIVED_FDS = 253;
/** Records read from one connection per readiness callback, so one peer cannot starve the rest. */
const READS_PER_CALLBACK = 8;
/**
 * Connections accepted per readiness callback of a listening socket. One per callback drained the
 * backlog at one connection per turn of the event loop, and a turn that allocates devices takes
 * tens of milliseconds in the TCG guest (each allocation ~30 ms, several callers' in one turn):
 * under the combined run's 100 held connections a second the backlog (256) stayed full, and a
 * caller's connection waited behind all of it, seconds, or its connect() timed out. 64 drain a
 * full backlog in four turns; a turn still does bounded work (a refused connection costs ~60 us
 * on the host). The listening socket is nonblocking (uv_poll_init sets O_NONBLOCK, also on
 * sockets from systemd), so an empty backlog ends the batch with EAGAIN.
 */
const ACCEPTS_PER_CALLBACK = 64;

/** The request a device answers, for the accounting (type, mode and flag are what it counts by). */
function requestOf(device: Device): AllocateRequest {
  const req: AllocateRequest = { v: PROTOCOL_VERSION, op: 'allocate', type: device.info.type };
  if (device.info.mode !== '') req.mode = device.info.mode;
  if (device.info.flag !== undefined) req.flag = device.info.flag;
  // The name too: the registry of held names is released by it.
  if (device.info.name !== undefined) req.name = device.info.name;
  return req;
}

export class Daemon {
  private readonly ports: Port[] = [];
  private readonly conns = new Map<number, Connection>();
  private readonly perUid = new Map<number, number>();
  /** DHCP leases held (or being sought) per uid. */
  private readonly leasesPerUid = new Map<number, number>();
  /** Connections per uid that have not finished their request: one user cannot fill the queue. */
  private readonly pendingPerUid = new Map<number, number>();
  private readonly uplinkUse = new Map<string, UplinkUse>();
  /** Which uid's leases hold which workload names. */
  private readonly names: NameRegistry;
  private readonly factory: DeviceFactory;
  readonly releaser: Releaser;
  /** Lines a caller causes by being refused: rate-limited per uid and kind. */
  private readonly refusals: LimitedLog;
  /** Lease lines of uids other than root: rate-limited per uid (caps bound devices, not churn). */
  private readonly leaseLines: LimitedLog;
  /** Descriptors callers send are closed in the background (closer.ts), at most so many at a time. */
  private readonly backlog = new CloseBacklog();
  readonly links: LinkWatch;
  private readonly tampered = new Cooldown();
  private readonly ownNetns = statSync('/proc/self/ns/net', { bigint: true });
  private readonly key: Buffer;
  private nextId = 1;
  private pending = 0;
  private devices = 0;
  private stopping = false;

  constructor(
    private readonly rtnl: RouteSocket,
    private readonly log: Logger,
    private readonly limits: DaemonLimits,
    key: Buffer,
    private readonly policy: DaemonPolicy = defaultPolicy,
  ) {
    this.key = key;
    this.factory = new DeviceFactory(rtnl, key);
    this.names = new NameRegistry(policy.reserved);
    this.releaser = new Releaser(rtnl, log);
    this.refusals = new LimitedLog(log);
    this.leaseLines = new LimitedLog(log, leaseRate);
    this.links = LinkWatch.open(rtnl, log);
  }

  get deviceCount(): number {
    return this.devices;
  }

  serve(socket: PortSocket): void {
    const port: Port = { socket, poller: undefined as unknown as Poller, pause: undefined as unknown as AcceptPause };
    port.pause = new AcceptPause(socket.uplink, () => port.poller, this.log);
    port.poller = native().poll(socket.fd, (err) => {
      // The poller stops on an error: log it and listen again later.
      if (err) port.pause.failed(`poll: ${err.message}`);
      else for (let i = 0; i < ACCEPTS_PER_CALLBACK && this.acceptOne(port); i++);
    });
    port.poller.start(true, false);
    this.ports.push(port);
    this.log.info('serving', { uplink: socket.uplink, socket: socket.path ?? `fd:${socket.fd}` });
  }

  /** Accepts one connection; false when the backlog is empty or accept failed (the batch ends). */
  private acceptOne(port: Port): boolean {
    let fd: number;
    try {
      fd = native().accept(port.socket.fd);
    } catch (e) {
      // EMFILE and friends: the connection stays in the backlog; try again later.
      port.pause.failed((e as Error).message);
      return false;
    }
    if (fd < 0) return false;
    port.pause.succeeded();
    let peer: PeerCred;
    try {
      peer = native().peerCred(fd);
    } catch {
      closeConnection(UNKNOWN_PEER_LANE, fd);
      return true;
    }
    const conn: Connection = {
      id: this.nextId++, fd, port, peer, state: 'awaiting', timer: undefined, device: undefined, refusedExtra: false, leaseLogged: false,
      pending: true, dhcp: undefined,
      poller: undefined as unknown as Poller,
    };
    const waitingOfUid = this.pendingPerUid.get(peer.uid) ?? 0;
    if (this.stopping || this.pending >= this.limits.maxPending || waitingOfUid >= this.limits.maxPendingPerUid) {
      const reason = waitingOfUid >= this.limits.maxPendingPerUid ? `uid ${peer.uid} has too many connections waiting` : 'too many connections waiting';
      this.refusals.write('warn', 'refused', peer.uid, 'refused', { conn: conn.id, pid: peer.pid, uid: peer.uid, reason });
      this.sendError(conn, { code: 'limit', message: `ontapd is busy: ${reason}` });
      closeConnection(peer.uid, fd);
      return true;
    }
    this.pending++;
    this.pendingPerUid.set(peer.uid, waitingOfUid + 1);
    this.conns.set(conn.id, conn);
    conn.timer = setTimeout(() => this.onTimeout(conn), this.limits.requestTimeoutMs);
    // An error (POLLERR: ECONNRESET when the peer closed with our reply unread) stops the poller,
    // so nothing more would be read, not even the EOF: it ends the connection like the EOF does.
    conn.poller = native().poll(fd, (err) => {
      if (err) this.close(conn, `poll-error ${(err as { code?: string }).code ?? err.message}`);
      else this.onReadable(conn);
    });
    conn.poller.start(true, false);
    this.log.debug('connect', { conn: conn.id, uplink: port.socket.uplink, pid: peer.pid, uid: peer.uid });
    return true;
  }

  private onTimeout(conn: Connection): void {
    if (conn.state !== 'awaiting') return;
    this.fail(conn, new RequestError('timeout', `no request within ${this.limits.requestTimeoutMs} ms`));
  }

  private onReadable(conn: Connection): void {
    for (let reads = 0; reads < READS_PER_CALLBACK; reads++) {
      if (conn.state === 'closed') return;
      if (!this.backlog.mayRead(conn.peer.uid)) {
        conn.poller.stop();
        this.backlog.hold(conn, conn.peer.uid, () => conn.poller.start(true, false));
        return;
      }
      let r;
      try {
        r = native().recvmsg(conn.fd, MAX_REQUEST_BYTES, MAX_RECEIVED_FDS);
      } catch (e) {
        this.close(conn, (e as { code?: string }).code ?? 'recv-error');
        return;
      }
      if (r === null) return;
      if (r.length === 0 && r.fds.length === 0) {
        this.close(conn, 'peer-closed');
        return;
      }
      if (conn.state !== 'awaiting') {
        closeForeign(conn.peer.uid, r.fds);
        // The lease stays: the first extra request is refused, later ones are dropped unanswered
        // so that a peer writing in a loop cannot make ontapd reply and log in a loop.
        if (!conn.refusedExtra) {
          conn.refusedExtra = true;
          this.sendError(conn, { code: 'conflict', message: 'this connection already holds a device; open another connection for another device' });
          this.refusals.write('warn', 'bad-request', conn.peer.uid, 'second-request', { conn: conn.id, uid: conn.peer.uid, reason: 'second request on one connection' });
        }
        continue;
      }
      if (r.truncated) {
        closeForeign(conn.peer.uid, r.fds);
        this.fail(conn, new RequestError('bad-request', `request is ${r.length} bytes, larger than ${MAX_REQUEST_BYTES}`));
        return;
      }
      if (r.controlTruncated) {
        closeForeign(conn.peer.uid, r.fds);
        this.fail(conn, new RequestError('bad-request', 'request carried more descriptors than the one netns descriptor allowed'));
        return;
      }
      const parsed = parseRequest(r.data);
      if (!parsed.ok) {
        closeForeign(conn.peer.uid, r.fds);
        this.fail(conn, new RequestError(parsed.error.code, parsed.error.message, parsed.error.field));
        return;
      }
      this.startAllocation(conn, parsed.request, r.fds);
    }
  }

  private startAllocation(conn: Connection, req: AllocateRequest, fds: number[]): void {
    clearTimeout(conn.timer);
    conn.state = 'allocating';
    const started = process.hrtime.bigint();
    this.allocate(conn, req, fds)
      .then((device) => {
        const fields = {
          conn: conn.id, pid: conn.peer.pid, uid: conn.peer.uid, uplink: device.info.uplink, type: device.info.type,
          ifname: device.info.ifname, ifindex: device.ifindex, nsid: device.nsid, name: device.info.name,
          queues: device.info.queues, ipv4: device.info.ipv4 === undefined ? undefined : `${device.info.ipv4.address}/${device.info.ipv4.prefixLength}`,
          us: Number((process.hrtime.bigint() - started) / 1000n),
        };
        if (conn.peer.uid === 0) {
          this.log.info('allocate', fields);
          conn.leaseLogged = true;
        } else {
          conn.leaseLogged = this.leaseLines.write('info', 'allocate', conn.peer.uid, 'lease', fields);
        }
      })
      .catch((e: unknown) => {
        const err = e instanceof RequestError ? e : new RequestError('internal', (e as Error).message ?? String(e));
        this.fail(conn, err);
      })
      .finally(() => closeForeign(conn.peer.uid, fds)); // what the request brought and no lease took
  }

  private checkPolicy(conn: Connection, req: AllocateRequest, fds: number[]): number | undefined {
    const uid = conn.peer.uid;
    if (this.devices >= this.limits.maxDevices) throw new RequestError('limit', `ontapd holds its maximum of ${this.limits.maxDevices} devices`);
    if ((this.perUid.get(uid) ?? 0) >= this.limits.maxPerUid) {
      throw new RequestError('limit', `uid ${uid} holds its maximum of ${this.limits.maxPerUid} devices`);
    }
    const cooling = this.tampered.remaining(uid);
    if (cooling > 0) {
      throw new RequestError('limit', `uid ${uid} tampered with a device it held (its hardware address, or link events in a loop); its requests are refused for another ${Math.ceil(cooling / 1000)} s`);
    }
    const use = this.uplinkUse.get(conn.port.socket.uplink);
    const family = familyOf(req.type);
    if (use !== undefined) {
      if (use.family !== family) {
        throw new RequestError('conflict', `uplink ${conn.port.socket.uplink} carries ${use.family} devices now; one uplink cannot carry ipvlan and macvlan at once`, 'type');
      }
      const mode = req.mode ?? (family === 'ipvlan' ? 'l2' : 'bridge');
      if (family === 'ipvlan' && (use.mode !== mode || use.flag !== (req.flag ?? 'bridge'))) {
        throw new RequestError('conflict',
          `uplink ${conn.port.socket.uplink} carries ipvlan devices in mode ${use.mode} ${use.flag}; the mode belongs to the uplink, so every ipvlan on it must use it`, 'mode');
      }
    }
    if (req.ipv4 === 'dhcp' && uid !== 0 && (this.leasesPerUid.get(uid) ?? 0) >= this.limits.maxLeasesPerUid) {
      throw new RequestError('limit', `uid ${uid} holds its maximum of ${this.limits.maxLeasesPerUid} DHCP leases (ontapd --max-leases-per-uid)`, 'ipv4');
    }
    if (req.name !== undefined) this.names.check(req.name, uid);
    if (req.mode === 'passthru' && uid !== 0) {
      // passthru hands the whole uplink (all its unicast, its MAC, promiscuity) to one device.
      throw new RequestError('forbidden', 'only root may ask for passthru mode: it takes the whole uplink', 'mode');
    }
    if (isTapType(req.type)) {
      if (fds.length > 0) throw new RequestError('bad-request', `${req.type} devices stay on the host: send no namespace descriptor`);
      return undefined;
    }
    if (fds.length !== 1) throw new RequestError('bad-request', `${req.type} needs exactly one descriptor: the caller's /proc/self/ns/net`);
    const nsFd = fds[0]!;
    // The descriptor must be the namespace the connection was made from (not a pid's: see netns-binding.ts).
    const actual = bindNetns(conn.fd, nsFd);
    if (actual.dev === this.ownNetns.dev && actual.ino === this.ownNetns.ino && uid !== 0) {
      throw new RequestError('forbidden', `only root may place a ${req.type} in ontapd's own network namespace; use ontap --netns`);
    }
    if (req.type === 'macvlan' && uid !== 0 && !ownedByOurUserNamespace(nsFd)) {
      // The kernel puts a macvlan made on top of a macvlan onto the real parent without asking for
      // any privilege there, in any namespace the caller names: uncounted, out of ontapd's sight.
      throw new RequestError('forbidden',
        `a macvlan in a network namespace owned by another user namespace would let that namespace's owner put uncounted macvlans on uplink ${conn.port.socket.uplink}; ask for macvtap (or ipvlan, where the uplink carries ipvlan)`, 'type');
    }
    return nsFd;
  }

  private async allocate(conn: Connection, asked: AllocateRequest, fds: number[]): Promise<Device> {
    const uplink = conn.port.socket.uplink;
    const req = withUplinkSettings(asked, conn.peer.uid, this.policy.uplink, uplink);
    const nsFd = this.checkPolicy(conn, req, fds);
    // Counted in the same turn as the checks, before any await, so that concurrent requests see
    // the caps, the mode and the name (a count made after an await let them all pass the checks).
    this.account(conn.peer.uid, uplink, req, +1);
    const slot = req.ipv4 === 'dhcp' ? this.reserveLease(conn.peer.uid) : undefined;
    let uplinkIfindex: number;
    let device: Device;
    let tapFds: number[];
    try {
      try {
        uplinkIfindex = this.rtnl.getLink({ ifname: uplink }).ifindex;
      } catch {
        throw new RequestError('unavailable', `uplink ${uplink} does not exist (any more)`);
      }
      // The same workload started again at once: its old device may still wait out its goodbye
      // window, holding the MAC the name gives (the kernel would refuse the new one).
      if (req.name !== undefined) await this.releaser.expedite(uplink, req.name);
      ({ device, fds: tapFds } = await this.factory.allocate(req, { uplink, uplinkIfindex, netnsFd: nsFd, owner: conn.peer.uid }));
    } catch (e) {
      this.account(conn.peer.uid, uplink, req, -1);
      slot?.free();
      throw e;
    }
    conn.device = device;
    this.links.watch({ device, uplinkIfindex, guardAddress: guardsAddress(device), onProblem: (p) => this.onLinkProblem(conn, device, p) });
    // From here the lease owns the namespace descriptor: take it out of what the caller closes.
    if (device.netnsFd !== undefined) fds.splice(fds.indexOf(device.netnsFd), 1);
    if (slot !== undefined && conn.state !== 'closed') {
      try {
        device.info.ipv4 = await this.leaseIpv4(conn, device, slot);
      } catch (e) {
        closeOwn(tapFds);
        conn.dhcp?.release();
        conn.dhcp = undefined;
        slot.free();
        this.releaseDevice(conn);
        throw e;
      }
    }
    // (A lease that started frees its slot when it ends; one that did not, here.)
    if (conn.dhcp === undefined) slot?.free();
    if (conn.state === 'closed') {
      // The caller went away while we worked: its lease is already over.
      closeOwn(tapFds);
      this.releaseDevice(conn);
      throw new RequestError('internal', 'caller closed the connection during allocation');
    }
    const reply: Reply = { v: PROTOCOL_VERSION, ok: true, device: device.info };
    try {
      const sent = native().sendmsg(conn.fd, Buffer.from(JSON.stringify(reply)), tapFds, undefined);
      if (sent < 0) throw new Error('reply would block');
    } catch (e) {
      closeOwn(tapFds);
      this.close(conn, 'reply-failed');
      // close() leaves a device being allocated to allocate(): this one is ours to release.
      this.releaseDevice(conn);
      throw new RequestError('internal', `could not send the reply: ${(e as Error).message}`);
    }
    closeOwn(tapFds);
    conn.state = 'leased';
    this.donePending(conn);
    return device;
  }

  /** Counts one DHCP lease against uid's cap; free() (once) gives it back. */
  private reserveLease(uid: number): { free(): void } {
    this.leasesPerUid.set(uid, (this.leasesPerUid.get(uid) ?? 0) + 1);
    let held = true;
    return {
      free: () => {
        if (!held) return;
        held = false;
        const n = (this.leasesPerUid.get(uid) ?? 1) - 1;
        if (n > 0) this.leasesPerUid.set(uid, n);
        else this.leasesPerUid.delete(uid);
      },
    };
  }

  /**
   * Holds an IPv4 lease for the device until the connection ends; resolves once bound. While it
   * waits the connection holds a device (counted by the device caps), so it stops counting as
   * waiting: 256 workloads of one uid may lease at once.
   */
  private leaseIpv4(conn: Connection, device: Device, slot: { free(): void }): Promise<Ipv4Info> {
    this.donePending(conn);
    const lease = new DhcpLease({
      netnsFd: device.netnsFd!, ifname: device.info.ifname, ifindex: device.info.ifindex, hwaddr: parseMac(device.info.hwaddr),
      clientId: dhcpClientId(this.key, conn.peer.uid, device.info.name, device.info.ifindex),
      hostname: device.info.name, uplink: device.info.uplink, conn: conn.id, uid: conn.peer.uid,
    }, this.limits.dhcpTimeoutMs, { openRtnl: (fd) => this.rtnl.openInNamespace(fd), log: this.log });
    conn.dhcp = lease;
    lease.onEnd(() => slot.free());
    return lease.bound;
  }

  private account(uid: number, uplink: string, req: AllocateRequest, delta: 1 | -1): void {
    this.devices += delta;
    const n = (this.perUid.get(uid) ?? 0) + delta;
    if (n > 0) this.perUid.set(uid, n);
    else this.perUid.delete(uid);
    if (req.name !== undefined) {
      if (delta > 0) this.names.claim(req.name, uid);
      else this.names.release(req.name, uid);
    }
    const use = this.uplinkUse.get(uplink);
    if (delta > 0) {
      if (use) use.count++;
      else {
        const family = familyOf(req.type);
        this.uplinkUse.set(uplink, {
          family, count: 1, mode: req.mode ?? (family === 'ipvlan' ? 'l2' : 'bridge'),
          flag: family === 'ipvlan' ? (req.flag ?? 'bridge') : undefined,
        });
      }
    } else if (use && --use.count === 0) {
      this.uplinkUse.delete(uplink);
    }
  }

  /**
   * A holder changed a leased device behind ontapd's back (see link-watch.ts). An address taken
   * from someone else has already been put back; the lease ends now and the device goes without
   * waiting for the release batch. A device that is gone ends its lease too and no longer counts.
   * One that escaped (moved on out of sight, see LinkWatch.chase) ends its lease but goes on
   * counting against its uid, the device cap and the uplink until ontapd restarts: it is still
   * on the uplink, and the kernel will not tell ontapd when it goes.
   */
  private onLinkProblem(conn: Connection, device: Device, p: LinkProblem): void {
    const leased = conn.device === device;
    const escaped = (p.kind === 'moved' && !p.deleted) || (p.kind === 'vanished' && this.movableByHolder(device));
    const fields = {
      conn: conn.id, uid: conn.peer.uid, ifname: device.info.ifname, nsid: device.nsid, problem: p.kind, leased,
      ...(p.kind === 'address-changed' ? { address: p.address, expected: device.info.hwaddr, restored: p.restored } : {}),
      ...(p.kind === 'moved' || p.kind === 'vanished' ? { escaped } : {}),
      ...(p.kind === 'flooding' ? { events: p.events } : {}),
    };
    const tampering = p.kind === 'address-changed' || p.kind === 'flooding';
    if (tampering && conn.peer.uid !== 0) this.tampered.impose(conn.peer.uid);
    if (!leased) {
      // Released already and waiting for its group's deletion: make that happen now, or count it
      // again if it left the group's namespace for one out of reach.
      this.log[escaped ? 'warn' : 'debug']('link-problem', fields);
      if (tampering) this.releaser.flushSoon();
      if (escaped) this.account(conn.peer.uid, device.info.uplink, requestOf(device), +1);
      return;
    }
    this.log.warn('link-problem', fields);
    if (tampering) {
      this.close(conn, p.kind, true);
      return;
    }
    conn.device = undefined;
    if (!escaped) this.account(conn.peer.uid, device.info.uplink, requestOf(device), -1);
    closeNamespace(device);
    this.close(conn, `device-${p.kind}`);
  }

  /**
   * Whether the device's holder could have moved it away: its namespace is owned by another user
   * namespace (where CAP_NET_ADMIN is the namespace owner's to have). A device that vanished
   * while events were lost from a namespace only root can change was deleted.
   */
  private movableByHolder(device: Device): boolean {
    if (device.nsid === undefined || device.netnsFd === undefined) return false;
    try {
      return !ownedByOurUserNamespace(device.netnsFd);
    } catch {
      return true;
    }
  }

  private releaseDevice(conn: Connection, soon = false): void {
    const device = conn.device;
    if (device === undefined) return;
    conn.device = undefined;
    this.account(conn.peer.uid, device.info.uplink, requestOf(device), -1);
    this.releaser.release(device, soon);
    if (conn.leaseLogged) this.log.info('release', { conn: conn.id, uid: conn.peer.uid, ifname: device.info.ifname, nsid: device.nsid });
  }

  private sendError(conn: Connection, error: ProtocolError): void {
    const reply: Reply = { v: PROTOCOL_VERSION, ok: false, error };
    try {
      native().sendmsg(conn.fd, Buffer.from(JSON.stringify(reply)), undefined, undefined);
    } catch {
      // the peer is gone; nothing to tell
    }
  }

  private fail(conn: Connection, err: RequestError): void {
    const level = err.code === 'internal' ? 'error' : 'warn';
    this.refusals.write(level, 'request-failed', conn.peer.uid, `request-failed/${err.code}`, {
      conn: conn.id, pid: conn.peer.pid, uid: conn.peer.uid, uplink: conn.port.socket.uplink,
      code: err.code, field: err.field, error: err.message,
    });
    if (conn.state !== 'closed') {
      this.sendError(conn, err.toProtocol());
      this.close(conn, err.code);
    }
  }

  private donePending(conn: Connection): void {
    if (!conn.pending) return;
    conn.pending = false;
    this.pending--;
    const n = (this.pendingPerUid.get(conn.peer.uid) ?? 1) - 1;
    if (n > 0) this.pendingPerUid.set(conn.peer.uid, n);
    else this.pendingPerUid.delete(conn.peer.uid);
  }

  private close(conn: Connection, reason: string, releaseSoon = false): void {
    if (conn.state === 'closed') return;
    this.donePending(conn);
    const wasAllocating = conn.state === 'allocating';
    conn.state = 'closed';
    // DHCPRELEASE goes out now, while the device is still there (its deletion comes later).
    conn.dhcp?.release();
    clearTimeout(conn.timer);
    conn.poller.close();
    this.backlog.forget(conn);
    closeConnection(conn.peer.uid, conn.fd);
    for (const port of this.ports) port.pause.retryNow();
    this.conns.delete(conn.id);
    this.log.debug('disconnect', { conn: conn.id, reason });
    // While allocating, allocate() releases the device itself when it finishes.
    if (!wasAllocating) this.releaseDevice(conn, releaseSoon);
  }

  /** Stops accepting, ends every lease, waits for the devices to be deleted. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const port of this.ports) {
      port.pause.stop();
      port.poller.close();
      closeOwn([port.socket.fd]);
    }
    for (const conn of [...this.conns.values()]) this.close(conn, 'shutdown');
    this.refusals.stop();
    this.leaseLines.stop();
    this.backlog.stop();
    await this.releaser.idle();
    this.links.close();
  }

  openConnections(): number {
    return this.conns.size;
  }
}
