/**
 * Address classes, by prefix (never by the kernel's scope, which `ip addr add ... scope` can set to
 * anything for IPv4). The tables are the whole rule; docs/ontap-zone.8 (ontap-zone(8)) prints them.
 */

import { parseAddress } from '../netns/rtnl/inet.js';

export { parseAddress, parseIPv4, parseIPv6 } from '../netns/rtnl/inet.js';

export type AddressClass = 'wan' | 'lan' | 'local' | 'none';

export interface Prefix {
  family: 4 | 6;
  bytes: Uint8Array;
  length: number;
}

/** "10.0.0.0/8" or "fd00::/8". The host bits must be zero. */
export function parsePrefix(text: string): Prefix | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const addr = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return undefined;
  const length = Number(lenText);
  const family = addr.includes(':') ? 6 : 4;
  const bytes = parseAddress(family, addr);
  if (bytes === undefined || length > bytes.length * 8) return undefined;
  if (!hostBitsZero(bytes, length)) return undefined;
  return { family, bytes, length };
}

function hostBitsZero(bytes: Uint8Array, length: number): boolean {
  for (let bit = length; bit < bytes.length * 8; bit++) {
    if ((bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) return false;
  }
  return true;
}

export function inPrefix(bytes: Uint8Array, p: Prefix): boolean {
  if (bytes.length !== p.bytes.length) return false;
  const full = p.length >> 3;
  for (let i = 0; i < full; i++) if (bytes[i] !== p.bytes[i]) return false;
  const rest = p.length & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (bytes[full]! & mask) === (p.bytes[full]! & mask);
}

function table(entries: string[]): Prefix[] {
  return entries.map((e) => {
    const p = parsePrefix(e);
    if (p === undefined) throw new Error(`bad built-in prefix ${e}`);
    return p;
  });
}

/**
 * Never published: not an address a peer could use to reach the workload. Everything else is wan,
 * lan or local by the tables below; documentation (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
 * 2001:db8::/32, 3fff::/20), benchmarking (198.18.0.0/15) and shared (100.64.0.0/10) ranges are
 * wan: they stand in for global addresses in labs and tests.
 */
export const NEVER: readonly Prefix[] = table([
  '0.0.0.0/8', '127.0.0.0/8', '224.0.0.0/4', '240.0.0.0/4',
  '::/96', '::ffff:0:0/96', '100::/64', 'fec0::/10', 'ff00::/8',
]);
export const LOCAL: readonly Prefix[] = table(['169.254.0.0/16', 'fe80::/10']);
export const LAN: readonly Prefix[] = table(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']);

/** ifa_scope values that never publish, whatever the address: host (254) and nowhere (255). */
export const SCOPE_HOST = 254;

export function classifyBytes(bytes: Uint8Array): AddressClass {
  for (const p of NEVER) if (inPrefix(bytes, p)) return 'none';
  for (const p of LOCAL) if (inPrefix(bytes, p)) return 'local';
  for (const p of LAN) if (inPrefix(bytes, p)) return 'lan';
  return 'wan';
}

export function classifyAddress(family: 4 | 6, text: string, scope = 0): AddressClass {
  if (scope >= SCOPE_HOST) return 'none';
  const bytes = parseAddress(family, text);
  return bytes === undefined ? 'none' : classifyBytes(bytes);
}
