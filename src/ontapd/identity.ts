import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { clientIdFor } from '../dhcp/client-id.js';

/**
 * Per-host key for everything ontapd derives from a workload name. RFC 7217 wants the secret to
 * differ between hosts so interface identifiers do not follow a workload across networks;
 * /etc/machine-id is stable across reboots and unique per host.
 */
export function hostKey(): Buffer {
  for (const path of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = readFileSync(path, 'utf8').trim();
      if (id.length > 0) return Buffer.from(id);
    } catch {
      // try the next source
    }
  }
  return Buffer.from(`host:${hostname()}`);
}

/**
 * A workload's identity is its owner's: the uid (SO_PEERCRED, in ontapd's user namespace) is part
 * of the input, so another uid asking for the same name later gets other values, and the
 * stable_secret a caller can read in a user and network namespace of its own tells it nothing
 * about another uid's. Root's names keep the input they had before uids were part of it (root's
 * workloads keep their addresses): only a peer that is root gets it, and every other uid's input
 * starts with another tag. `name` is a DNS label (no NUL), `uid` digits: the input is unambiguous.
 */
function derive(key: Buffer, purpose: string, uid: number, name: string): Buffer {
  const input = uid === 0 ? `ontap/${purpose}/v1\0${name}` : `ontap/${purpose}/uid/v1\0${uid}\0${name}`;
  return createHmac('sha256', key).update(input).digest();
}

/** The IPv6 stable_secret (RFC 7217 "secret_key") for uid's workload `name`, as the sysctl wants it. */
export function stableSecret(key: Buffer, uid: number, name: string): string {
  const b = derive(key, 'stable_secret', uid, name);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}

/**
 * A locally administered unicast MAC for uid's named macvlan/macvtap. The kernel hashes the hardware
 * address into RFC 7217 identifiers, so a random MAC per creation would defeat a stable secret.
 */
export function stableMac(key: Buffer, uid: number, name: string): string {
  const b = derive(key, 'mac', uid, name).subarray(0, 6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * The DHCP client identifier (option 61, RFC 4361) of uid's device (src/dhcp/client-id.ts): a named
 * workload's from its name under the host key, so the same name gets the same address back from
 * the same server after a restart; an unnamed device's from random bytes, a new client each time.
 */
export function dhcpClientId(key: Buffer, uid: number, name: string | undefined, ifindex: number): Buffer {
  return name !== undefined ? clientIdFor({ name, uid, salt: key }) : clientIdFor({ ifindex, random: randomBytes(16) });
}
