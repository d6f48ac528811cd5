/**
 * The DHCP client identifier (option 61) of a workload's device: RFC 4361's form, type 255, a 4-octet
 * IAID and a DUID, so servers key the lease on it rather than on the MAC. Pure.
 *
 * A named workload gets the same identifier every time it runs, so the server hands it back the
 * same address: DUID-UUID (DUID type 4, RFC 6355) whose UUID, and the IAID, come from an HMAC-SHA-256
 * of the name under the host's key, like its MAC and stable_secret (src/ontapd/identity.ts). The uid
 * is part of the input for the same reason it is there: a name is its owner's, and another uid's
 * "web" must not be handed this one's lease. The key keeps identifiers from following a name from
 * host to host, and the UUID carries the version 8 (RFC 9562 §5.8, custom: the hash is SHA-256,
 * not v5's SHA-1) and variant bits so it is a well-formed UUID.
 *
 * An unnamed device is a new client each time: a DUID-UUID from caller-supplied random bytes
 * (version 4), and its ifindex as IAID (RFC 4361 §6.1: the IAID names the interface). The random
 * bytes carry the uniqueness, not the ifindex: every namespace numbers its devices from 1.
 */
import { createHmac } from 'node:crypto';

export type ClientIdInput =
  | { name: string; uid: number; salt: Buffer }
  | { name?: undefined; ifindex: number; random: Buffer };

export class ClientIdError extends Error {
  override readonly name = 'ClientIdError';
  constructor(
    readonly field: string,
    readonly rule: string,
  ) {
    super(`${field}: ${rule}`);
  }
}

const CLIENT_ID_TYPE_RFC4361 = 255;
const DUID_UUID = 4;

function derive(salt: Buffer, purpose: string, uid: number, name: string): Buffer {
  // `name` is a DNS label (no NUL), uid digits: the input is unambiguous
  return createHmac('sha256', salt).update(`ontap/dhcp-${purpose}/v1\0${uid}\0${name}`).digest();
}

function uuid(bytes: Buffer, version: number): Buffer {
  const u = Buffer.from(bytes.subarray(0, 16));
  u[6] = (u[6]! & 0x0f) | (version << 4);
  u[8] = (u[8]! & 0x3f) | 0x80; // RFC 9562 variant 10xx
  return u;
}

function identifier(iaid: Buffer, uuidBytes: Buffer): Buffer {
  const duid = Buffer.alloc(2 + 16);
  duid.writeUInt16BE(DUID_UUID, 0);
  uuidBytes.copy(duid, 2);
  return Buffer.concat([Buffer.from([CLIENT_ID_TYPE_RFC4361]), iaid, duid]);
}

/** Option 61's value: 0xff, IAID (4 octets), DUID-UUID (00 04 + 16 octets); 23 octets. */
export function clientIdFor(input: ClientIdInput): Buffer {
  if (input.name !== undefined) {
    if (typeof input.name !== 'string' || input.name.length === 0 || input.name.includes('\0')) throw new ClientIdError('name', 'must be a non-empty string without NUL');
    if (!Number.isInteger(input.uid) || input.uid < 0 || input.uid > 0xffffffff) throw new ClientIdError('uid', `must be a uint32, is ${input.uid}`);
    if (!Buffer.isBuffer(input.salt) || input.salt.length === 0) throw new ClientIdError('salt', 'must be a non-empty Buffer (the host key)');
    const iaid = derive(input.salt, 'iaid', input.uid, input.name).subarray(0, 4);
    return identifier(iaid, uuid(derive(input.salt, 'duid', input.uid, input.name), 8));
  }
  if (!Number.isInteger(input.ifindex) || input.ifindex < 1 || input.ifindex > 0xffffffff) throw new ClientIdError('ifindex', `must be a positive uint32, is ${input.ifindex}`);
  if (!Buffer.isBuffer(input.random) || input.random.length < 16) throw new ClientIdError('random', 'must be at least 16 random octets');
  const iaid = Buffer.alloc(4);
  iaid.writeUInt32BE(input.ifindex);
  return identifier(iaid, uuid(input.random, 4));
}
