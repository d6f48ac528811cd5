import { closeSync, constants, openSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { IFF_MULTI_QUEUE, IFF_NO_PI, IFF_TAP, IFF_VNET_HDR } from '../native/constants.js';
import { native } from '../native/index.js';

export class TapNodeError extends Error {
  override readonly name = 'TapNodeError';
}

/**
 * The character device of a macvtap/ipvtap link as sysfs reports it in ontapd's namespace:
 * /sys/class/net/IF/{macvtap,ipvtap}/tapN/dev holds "major:minor".
 */
function tapDevice(ifname: string): { name: string; major: number; minor: number } | undefined {
  for (const cls of ['macvtap', 'ipvtap']) {
    let entries: string[];
    try {
      entries = readdirSync(`/sys/class/net/${ifname}/${cls}`);
    } catch {
      continue;
    }
    for (const name of entries) {
      if (!/^tap\d+$/.test(name)) continue;
      const [major, minor] = readFileSync(`/sys/class/net/${ifname}/${cls}/${name}/dev`, 'utf8').trim().split(':').map(Number);
      if (major !== undefined && minor !== undefined) return { name, major, minor };
    }
  }
  return undefined;
}

function rdevMatches(path: string, major: number, minor: number): boolean {
  try {
    const st = statSync(path, { bigint: true });
    if (!st.isCharacterDevice()) return false;
    // glibc's gnu_dev_major/minor on a 64-bit dev_t.
    const rdev = st.rdev;
    const maj = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
    const min = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    return maj === major && min === minor;
  } catch {
    return false;
  }
}

/**
 * Opens the tap's character device once per queue. devtmpfs (or udev) creates /dev/tapN
 * asynchronously, and names it by ifindex, which is unique only within a namespace: a node of
 * that name may be missing yet or belong to another namespace's tap. So /dev/tapN is used only
 * when it is already there with our major:minor; otherwise ontapd makes a private node in /dev
 * (where device nodes may be opened, unlike a nodev /run), opens it and removes it at once,
 * which costs less than any wait for devtmpfs.
 */
export function openTap(ifname: string, queues: number): number[] {
  const dev = tapDevice(ifname);
  if (dev === undefined) throw new TapNodeError(`${ifname} has no tap character device in sysfs`);
  const shared = `/dev/${dev.name}`;
  if (rdevMatches(shared, dev.major, dev.minor)) return openQueues(shared, queues);
  const privateNode = `/dev/.ontap-${dev.name}-${randomBytes(4).toString('hex')}`;
  try {
    native().mknodChar(privateNode, 0o600, dev.major, dev.minor);
  } catch (e) {
    // Say why a node was needed: an administrator sees a missing CAP_MKNOD only when this happens.
    throw new TapNodeError(`/dev/${dev.name} is not ${ifname}'s (another namespace's tap has that name), and a private node cannot be made: ${(e as Error).message}`);
  }
  try {
    return openQueues(privateNode, queues);
  } finally {
    unlinkSync(privateNode);
  }
}

/**
 * IFF_VNET_HDR lets qemu use offloads; IFF_MULTI_QUEUE is set when more than one queue is asked,
 * as qemu does for its own multi-queue taps. Each open adds one queue.
 */
function openQueues(path: string, queues: number): number[] {
  const fds: number[] = [];
  const flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (queues > 1 ? IFF_MULTI_QUEUE : 0);
  try {
    for (let i = 0; i < queues; i++) {
      const fd = openSync(path, constants.O_RDWR);
      fds.push(fd);
      native().tapSetIff(fd, flags);
    }
    return fds;
  } catch (e) {
    for (const fd of fds) closeSync(fd);
    throw e;
  }
}
