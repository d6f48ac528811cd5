import { AF_UNIX, SOCK_SEQPACKET } from '../native/constants.js';
import { native } from '../native/index.js';
import {
  MAX_QUEUES, MAX_REPLY_BYTES, PROTOCOL_VERSION,
  type AllocateRequest, type DeviceInfo, type ErrorCode,
} from '../protocol/messages.js';

export type ClientErrorKind = 'unreachable' | 'refused' | 'protocol';

/** Why no device came back: unreachable (69), refused by ontapd (77 or 64), protocol trouble (70). */
export class ClientError extends Error {
  override readonly name = 'ClientError';
  constructor(readonly kind: ClientErrorKind, message: string, readonly code?: ErrorCode, readonly field?: string) {
    super(message);
  }
}

export interface Lease {
  /** The connection: the device lives as long as this descriptor stays open somewhere. */
  fd: number;
  device: DeviceInfo;
  /** Tap types: one descriptor per queue. */
  tapFds: number[];
}

function isDeviceInfo(d: unknown): d is DeviceInfo {
  if (typeof d !== 'object' || d === null) return false;
  const o = d as Record<string, unknown>;
  return typeof o.ifname === 'string' && typeof o.ifindex === 'number' && typeof o.hwaddr === 'string'
    && typeof o.mtu === 'number' && typeof o.queues === 'number' && typeof o.type === 'string';
}

/**
 * Connects, sends one request (with the netns descriptor for ipvlan/macvlan) and reads the reply,
 * blocking: the client has nothing else to do, and no event loop keeps start-up cheap.
 */
export function requestDevice(socketPath: string, request: AllocateRequest, netnsFd: number | undefined, timeoutMs = 15000): Lease {
  const n = native();
  const fd = n.socket(AF_UNIX, SOCK_SEQPACKET, 0, false);
  try {
    n.setTimeouts(fd, timeoutMs, timeoutMs);
    try {
      n.connectUnix(fd, socketPath);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'EACCES' || code === 'EPERM') {
        throw new ClientError('refused', `no permission to use ${socketPath}: ask for membership in its group`);
      }
      if (code === 'ENOENT' || code === 'ECONNREFUSED') {
        throw new ClientError('unreachable', `ontapd is not listening on ${socketPath}: start it (ontapd UPLINK)`);
      }
      if (code === 'EPROTOTYPE' || code === 'ENOTSOCK') {
        throw new ClientError('unreachable', `${socketPath} is not an ontapd socket`);
      }
      throw new ClientError('unreachable', `cannot connect to ${socketPath}: ${(e as Error).message}`);
    }
    n.sendmsg(fd, Buffer.from(JSON.stringify(request)), netnsFd === undefined ? undefined : [netnsFd], undefined);
    const r = n.recvmsg(fd, MAX_REPLY_BYTES, MAX_QUEUES);
    if (r === null) throw new ClientError('unreachable', `ontapd did not answer within ${timeoutMs / 1000} s`);
    if (r.length === 0) throw new ClientError('unreachable', 'ontapd closed the connection without answering');
    let reply: unknown;
    try {
      reply = JSON.parse(r.data.toString('utf8'));
    } catch {
      reply = undefined;
    }
    const o = reply as { v?: unknown; ok?: unknown; device?: unknown; error?: { code?: ErrorCode; message?: string; field?: string } };
    if (typeof o !== 'object' || o === null || o.v !== PROTOCOL_VERSION) {
      for (const f of r.fds) n.close(f);
      throw new ClientError('protocol', 'ontapd answered something this ontap cannot read (version mismatch?)');
    }
    if (o.ok !== true) {
      for (const f of r.fds) n.close(f);
      const err = o.error ?? {};
      throw new ClientError('refused', err.message ?? 'ontapd refused', err.code, err.field);
    }
    if (!isDeviceInfo(o.device) || r.fds.length !== (o.device.type.endsWith('tap') ? o.device.queues : 0)) {
      for (const f of r.fds) n.close(f);
      throw new ClientError('protocol', 'ontapd\'s reply is malformed');
    }
    return { fd, device: o.device, tapFds: r.fds };
  } catch (e) {
    n.close(fd);
    throw e;
  }
}
