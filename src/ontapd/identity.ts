import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

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

function derive(key: Buffer, purpose: string, name: string): Buffer {
  return createHmac('sha256', key).update(`ontap/${purpose}/v1\0${name}`).digest();
}

/** The IPv6 stable_secret (RFC 7217 "secret_key") for a workload, as the sysctl wants it. */
export function stableSecret(key: Buffer, name: string): string {
  const b = derive(key, 'stable_secret', name);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}

/**
 * A locally administered unicast MAC for a named macvlan/macvtap. The kernel hashes the hardware
 * address into RFC 7217 identifiers, so a random MAC per creation would defeat a stable secret.
 */
export function stableMac(key: Buffer, name: string): string {
  const b = derive(key, 'mac', name).subarray(0, 6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
