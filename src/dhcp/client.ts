/**
 * An RFC 2131 client for one device: DISCOVER / OFFER / REQUEST / ACK, RENEWING at T1 (unicast to
 * the server), REBINDING at T2 (broadcast), the lease lost at its end or at a NAK, RELEASE when it
 * is given up. Rapid commit (RFC 4039) when the server answers the DISCOVER with an ACK.
 *
 * No I/O of its own: it is handed a transport (send a datagram), a clock (timers) and what was
 * received (receive()); what it decides goes out as events. ontapd gives it a UDP socket on the
 * device (src/dhcp/lease-holder.ts), the unit tests a recorder. Every packet it is handed may be
 * forged: replies for another xid, hardware address or client identifier are dropped; offers and
 * acks that do not make a usable lease (src/dhcp/lease.ts) are dropped and reported.
 */
import { decodeMessage, encodeClientMessage, DhcpDecodeError, MessageType, Option, type ClientMessage, type DhcpMessage } from './message.js';
import { leaseFromAck, LeaseError, type Lease } from './lease.js';

export type ClientState = 'init' | 'selecting' | 'requesting' | 'bound' | 'renewing' | 'rebinding' | 'stopped';

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface Transport {
  /** Sends to 255.255.255.255:67, or unicast to a server's address:67 (RENEWING). */
  send(packet: Buffer, to: 'broadcast' | string): void;
}

/** Why a received packet was not taken: said to the owner, who logs it (rate-limited). */
export interface Dropped {
  reason: 'undecodable' | 'not-ours' | 'unusable' | 'unexpected';
  /** The rule broken (a DhcpDecodeError's or LeaseError's field and rule), for the log line. */
  detail: string;
  from?: string;
}

export interface ClientEvents {
  /** First address in hand (also after a lease was lost and a new one found). */
  bound(lease: Lease): void;
  /** The same address, extended (RENEWING / REBINDING answered). */
  renewed(lease: Lease): void;
  /** The address may no longer be used: NAK, or the lease ended. The client starts again. */
  lost(why: 'nak' | 'expired', lease: Lease, message?: string): void;
  dropped(d: Dropped): void;
  /** A usable offer came from this server (so a timeout can say who did not follow it up). */
  offered(serverId: string): void;
}

export interface ClientConfig {
  /** The device's hardware address (chaddr): the uplink's for ipvlan, shared by every device on it. */
  chaddr: Buffer;
  /** Option 61, RFC 4361 (src/dhcp/client-id.ts): what tells devices on one MAC apart. */
  clientId: Buffer;
  /** Option 12: the workload name, so the LAN's server learns it too. */
  hostname?: string | undefined;
  /** An address to ask for again (INIT-REBOOT-like: put in the DISCOVER as option 50). */
  requestedAddress?: string | undefined;
  /** Random 32-bit numbers (xids) and jitter in [0, 1). */
  random(): number;
  /** First retransmission of DISCOVER / REQUEST; doubled each time up to 64 s (RFC 2131 §4.1). */
  initialRetransmitMs?: number;
}

/** Options asked for in every request (option 55). */
const PARAMETERS = [Option.SUBNET_MASK, Option.ROUTER, Option.DNS, Option.DOMAIN, Option.BROADCAST, Option.LEASE_TIME, Option.RENEWAL_TIME, Option.REBINDING_TIME];
/** REQUESTs sent for one OFFER before starting again from DISCOVER. */
const REQUEST_TRIES = 4;
/** RFC 2131 §4.1: doubled up to 64 s. */
const MAX_RETRANSMIT_MS = 64_000;
/** RFC 2131 §4.4.5: in RENEWING and REBINDING, half the time left, but not under 60 s (or what is left). */
const MIN_RENEW_RETRANSMIT_MS = 60_000;
/**
 * The least time between two messages of one exchange: a server (or a forger) granting leases of
 * a second, with T1 and T2 of nothing, gets a few messages a second from a device, not a flood.
 */
const MIN_GAP_MS = 1000;
/**
 * Node's setTimeout takes at most 2^31-1 ms (24.8 days) and fires at once for more: a lease of
 * 50 days would make T1 "now", again and again. Longer waits are chained (at()).
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** After a NAK, or REQUESTs unanswered: the wait before DISCOVER again, doubled up to 64 s. */
const RESTART_WAIT_MS = 3000;
/** RFC 2131 §3.1 (5): after a DECLINE, wait before starting again. */
export const DECLINE_WAIT_MS = 10_000;
/** Largest message we say we take (option 57): what one Ethernet frame holds. */
const MAX_MESSAGE_SIZE = 1500 - 28;

export class DhcpClient {
  private state: ClientState = 'init';
  private xid = 0;
  /** When the current exchange started (secs field). */
  private started = 0;
  private timer: unknown;
  private retransmitMs: number;
  private tries = 0;
  private offer: { lease: Lease; message: DhcpMessage } | undefined;
  private lease: Lease | undefined;
  /** When the lease was granted (T1, T2, expiry count from the REQUEST's sending, RFC 2131 §4.4.1). */
  private leaseStart = 0;
  private requestSentAt = 0;
  /** The wait before the next DISCOVER that follows a NAK or unanswered REQUESTs. */
  private restartWaitMs = RESTART_WAIT_MS;

  constructor(
    private readonly config: ClientConfig,
    private readonly transport: Transport,
    private readonly events: ClientEvents,
    private readonly clock: Clock = realClock,
  ) {
    this.retransmitMs = config.initialRetransmitMs ?? 2000;
  }

  get current(): ClientState {
    return this.state;
  }

  get bound(): Lease | undefined {
    return this.state === 'bound' || this.state === 'renewing' || this.state === 'rebinding' ? this.lease : undefined;
  }

  /** When the current lease ends, on the client's clock. */
  get expiresAt(): number | undefined {
    return this.lease === undefined ? undefined : this.leaseStart + this.lease.leaseSeconds * 1000;
  }

  start(): void {
    if (this.state !== 'init') return;
    this.discover();
  }

  /** Gives the lease up: RELEASE to the server when one is held. The client is done. */
  release(): void {
    const held = this.bound;
    this.stop();
    if (held === undefined) return;
    // Broadcast, not unicast (RFC 2131 says unicast): the device is about to be deleted, and a
    // unicast would wait in the neighbour queue for an ARP answer the deletion throws away.
    this.sendMessage({ type: MessageType.RELEASE, xid: this.newXid(), ciaddr: held.address, serverId: held.serverId, broadcast: false }, 'broadcast');
  }

  /** The address turned out to be in use (RFC 5227 probe): DECLINE, then start again after a wait. */
  decline(message: string): void {
    const held = this.lease;
    if (held === undefined) return;
    this.clear();
    this.sendMessage({ type: MessageType.DECLINE, xid: this.newXid(), requestedAddress: held.address, serverId: held.serverId, message, broadcast: false }, 'broadcast');
    this.lease = undefined;
    this.state = 'init';
    this.timer = this.clock.setTimeout(() => this.discover(), DECLINE_WAIT_MS);
  }

  stop(): void {
    this.clear();
    this.state = 'stopped';
  }

  /** A datagram that arrived on the device's port 68. */
  receive(data: Uint8Array, from?: string): void {
    if (this.state === 'stopped' || this.state === 'init' || this.state === 'bound') return;
    let m: DhcpMessage;
    try {
      m = decodeMessage(data);
    } catch (e) {
      if (e instanceof DhcpDecodeError) {
        this.events.dropped({ reason: 'undecodable', detail: `${e.field}: ${e.rule}`, ...(from !== undefined ? { from } : {}) });
        return;
      }
      throw e;
    }
    if (m.op !== 2 || m.xid !== this.xid || !m.chaddr.subarray(0, 6).equals(this.config.chaddr.subarray(0, 6))
      || (m.clientId !== undefined && !m.clientId.equals(this.config.clientId))) {
      // Another client's (every device of an ipvlan uplink shares the MAC, and replies are broadcast).
      this.events.dropped({ reason: 'not-ours', detail: `xid ${m.xid >>> 0}`, ...(from !== undefined ? { from } : {}) });
      return;
    }
    switch (m.type) {
      case MessageType.OFFER:
        if (this.state === 'selecting') this.onOffer(m, from);
        return;
      case MessageType.ACK:
        if (this.state === 'selecting' && m.rapidCommit === true) this.onAck(m, from);
        else if (this.state === 'requesting' || this.state === 'renewing' || this.state === 'rebinding') this.onAck(m, from);
        return;
      case MessageType.NAK:
        if (this.state === 'requesting' || this.state === 'renewing' || this.state === 'rebinding') this.onNak(m, from);
        return;
      default:
        this.events.dropped({ reason: 'unexpected', detail: `message type ${m.type}`, ...(from !== undefined ? { from } : {}) });
    }
  }

  /** Runs fn at `when` on the clock (not before), whatever the distance: long waits are chained. */
  private at(when: number, fn: () => void): void {
    const wait = when - this.clock.now();
    if (wait > MAX_TIMER_MS) this.timer = this.clock.setTimeout(() => this.at(when, fn), MAX_TIMER_MS);
    else this.timer = this.clock.setTimeout(fn, Math.max(0, wait));
  }

  /**
   * DISCOVER again, after a wait that grows: a server (or a forger) answering every DISCOVER with
   * an OFFER and every REQUEST with a NAK must not make the device ping-pong at wire speed.
   */
  private restartLater(): void {
    this.clear();
    this.state = 'init';
    const wait = this.jittered(this.restartWaitMs);
    this.restartWaitMs = Math.min(MAX_RETRANSMIT_MS, this.restartWaitMs * 2);
    this.timer = this.clock.setTimeout(() => this.discover(), wait);
  }

  private clear(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private newXid(): number {
    return Math.floor(this.config.random() * 0x1_0000_0000) >>> 0;
  }

  private secs(): number {
    return Math.min(0xffff, Math.floor((this.clock.now() - this.started) / 1000));
  }

  private sendMessage(m: Omit<ClientMessage, 'chaddr' | 'clientId' | 'hostname' | 'parameterRequest' | 'maxMessageSize'>, to: 'broadcast' | string): void {
    const withHostname = m.type === MessageType.DISCOVER || m.type === MessageType.REQUEST;
    const full: ClientMessage = {
      ...m,
      chaddr: this.config.chaddr,
      clientId: this.config.clientId,
      ...(withHostname && this.config.hostname !== undefined ? { hostname: this.config.hostname } : {}),
      ...(withHostname ? { parameterRequest: PARAMETERS, maxMessageSize: MAX_MESSAGE_SIZE } : {}),
    };
    this.transport.send(encodeClientMessage(full), to);
  }

  /** The RFC's ±1 s randomisation, scaled down for short first intervals. */
  private jittered(ms: number): number {
    const spread = Math.min(1000, ms / 4);
    return Math.max(1, ms + (this.config.random() * 2 - 1) * spread);
  }

  private discover(): void {
    this.clear();
    this.state = 'selecting';
    this.offer = undefined;
    this.xid = this.newXid();
    this.started = this.clock.now();
    this.retransmitMs = this.config.initialRetransmitMs ?? 2000;
    this.sendDiscover();
  }

  private sendDiscover(): void {
    const requested = this.lease?.address ?? this.config.requestedAddress;
    this.sendMessage({
      type: MessageType.DISCOVER, xid: this.xid, secs: this.secs(), broadcast: true, rapidCommit: true,
      ...(requested !== undefined ? { requestedAddress: requested } : {}),
    }, 'broadcast');
    this.timer = this.clock.setTimeout(() => {
      this.retransmitMs = Math.min(MAX_RETRANSMIT_MS, this.retransmitMs * 2);
      this.sendDiscover();
    }, this.jittered(this.retransmitMs));
  }

  private usable(m: DhcpMessage, from: string | undefined): Lease | undefined {
    try {
      return leaseFromAck(m);
    } catch (e) {
      if (!(e instanceof LeaseError)) throw e;
      this.events.dropped({ reason: 'unusable', detail: `${e.field}: ${e.rule}`, ...(from !== undefined ? { from } : {}) });
      return undefined;
    }
  }

  private onOffer(m: DhcpMessage, from: string | undefined): void {
    const lease = this.usable(m, from);
    if (lease === undefined) return;
    // The first usable offer (RFC 2131 allows waiting for more; a LAN has one server).
    this.clear();
    this.offer = { lease, message: m };
    this.events.offered(lease.serverId);
    this.state = 'requesting';
    this.tries = 0;
    this.retransmitMs = this.config.initialRetransmitMs ?? 2000;
    this.sendSelectingRequest();
  }

  private sendSelectingRequest(): void {
    const offer = this.offer!;
    this.requestSentAt = this.clock.now();
    this.sendMessage({
      type: MessageType.REQUEST, xid: this.xid, secs: this.secs(), broadcast: true,
      requestedAddress: offer.lease.address, serverId: offer.lease.serverId,
    }, 'broadcast');
    this.tries++;
    this.timer = this.clock.setTimeout(() => {
      if (this.tries >= REQUEST_TRIES) {
        this.restartLater();
        return;
      }
      this.retransmitMs = Math.min(MAX_RETRANSMIT_MS, this.retransmitMs * 2);
      this.sendSelectingRequest();
    }, this.jittered(this.retransmitMs));
  }

  private onAck(m: DhcpMessage, from: string | undefined): void {
    const lease = this.usable(m, from);
    if (lease === undefined) return;
    const renewing = this.state === 'renewing' || this.state === 'rebinding';
    if (renewing && lease.address !== this.lease?.address) {
      // A server may not move a bound client: take it as the end of the old lease.
      this.events.dropped({ reason: 'unusable', detail: `yiaddr: ${lease.address} is not the address being renewed (${this.lease?.address})`, ...(from !== undefined ? { from } : {}) });
      return;
    }
    if (this.state === 'selecting' && this.offer === undefined) this.requestSentAt = this.started;
    this.clear();
    this.lease = lease;
    this.leaseStart = this.requestSentAt;
    this.offer = undefined;
    this.state = 'bound';
    this.restartWaitMs = RESTART_WAIT_MS;
    this.scheduleRenewal();
    if (renewing) this.events.renewed(lease);
    else this.events.bound(lease);
  }

  private onNak(m: DhcpMessage, from: string | undefined): void {
    // A NAK must come from the server we asked (selecting) or hold our lease (renewing).
    const expected = this.offer?.lease.serverId ?? this.lease?.serverId;
    if (m.serverId !== undefined && expected !== undefined && m.serverId !== expected && this.state !== 'rebinding') {
      this.events.dropped({ reason: 'not-ours', detail: `NAK from server ${m.serverId}, not ${expected}`, ...(from !== undefined ? { from } : {}) });
      return;
    }
    this.clear();
    const old = this.lease;
    this.lease = undefined;
    const wasBound = (this.state === 'renewing' || this.state === 'rebinding') && old !== undefined;
    if (wasBound) this.events.lost('nak', old, m.message);
    // A bound client NAKed starts again at once (its address is gone: RFC 2131 §4.4.5); one NAKed
    // while requesting waits first.
    if (wasBound) this.discover();
    else this.restartLater();
  }

  private scheduleRenewal(): void {
    const lease = this.lease!;
    if (!Number.isFinite(lease.renewalSeconds)) return; // an infinite lease without T1: nothing to renew
    const t1 = this.leaseStart + lease.renewalSeconds * 1000;
    this.at(Math.max(this.clock.now() + MIN_GAP_MS, t1), () => this.renew());
  }

  private renew(): void {
    this.state = 'renewing';
    this.xid = this.newXid();
    this.started = this.clock.now();
    this.sendRenewal();
  }

  private sendRenewal(): void {
    const lease = this.lease!;
    const now = this.clock.now();
    const t2 = this.leaseStart + lease.rebindingSeconds * 1000;
    const end = this.leaseStart + lease.leaseSeconds * 1000;
    if (this.state === 'renewing' && now >= t2) this.state = 'rebinding';
    if (now >= end) {
      this.expire();
      return;
    }
    this.requestSentAt = now;
    this.sendMessage({ type: MessageType.REQUEST, xid: this.xid, secs: this.secs(), ciaddr: lease.address, broadcast: false },
      this.state === 'renewing' ? lease.serverId : 'broadcast');
    const until = this.state === 'renewing' ? t2 : end;
    const left = until - now;
    const wait = Math.min(left, Math.max(left / 2, MIN_RENEW_RETRANSMIT_MS));
    this.at(now + Math.max(MIN_GAP_MS, wait), () => this.sendRenewal());
  }

  private expire(): void {
    const old = this.lease!;
    this.lease = undefined;
    this.events.lost('expired', old);
    this.discover();
  }
}

export type { Lease };
