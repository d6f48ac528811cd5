/**
 * A tiny qemu guest for runvm's test: Debian's kernel (the VM harness's extracted vmlinux, from its
 * cache) and an initramfs built here with the harness's cpio writer: a static busybox, the virtio
 * network modules in modprobe's order, and an /init that reports its NIC, asks for a DHCP lease
 * and powers off. Nothing is mounted from the host: the guest's only way out is its NIC.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpioNewc, type CpioEntry } from '../integration/vm/cpio.js';
import { findHostTools, which, INSTALL_HINT } from '../integration/vm/host.js';
import { busyboxEntries, cacheDir, moduleBytes, moduleLoadOrder } from '../integration/vm/initramfs.js';
import { ensureBootImage } from '../integration/vm/vmlinux.js';
import { ROOT } from './ontapd.js';

/** What the guest prints on its console, one line each, for the test to read. */
export const GUEST_MARK = 'RUNVM-GUEST';

const INIT = `#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module params; do insmod "/modules/$module" $params || echo "${GUEST_MARK} insmod $module failed"; done </modules/order
ip link set lo up
ip link set eth0 up || echo "${GUEST_MARK} no eth0"
# virtio feature bit 22 is VIRTIO_NET_F_MQ: the device offers several queue pairs.
features=$(cat /sys/class/net/eth0/device/features)
echo "${GUEST_MARK} mac=$(cat /sys/class/net/eth0/address) mq=$(echo "$features" | cut -c23) rx-queues=$(ls -d /sys/class/net/eth0/queues/rx-* | wc -l)"
udhcpc -i eth0 -n -q -t 3 -T 1 -s /bin/true >/dev/null 2>&1
echo "${GUEST_MARK} done"
poweroff -f
`;

/** Modules the guest loads: virtio_pci (the PCI transport) and virtio_net with their dependencies. */
const MODULES = ['virtio_pci', 'virtio_net'];

export interface TinyGuest {
  qemu: string;
  kernel: string;
  initramfs: string;
  /** qemu arguments that boot it (no NIC: runvm adds that), the console on stdout. */
  args(cpus?: number): string[];
}

/** Why the guest cannot be built here, or undefined. */
export function tinyGuestMissing(): string | undefined {
  const found = findHostTools();
  if ('missing' in found) return `needs ${found.missing.join(', ')} (${INSTALL_HINT})`;
  if (!which('modprobe')) return 'needs modprobe (kmod) to compute the guest\'s modules';
  return undefined;
}

/** Builds the initramfs into dir (uncompressed: nothing to gain from gzip here). */
export function buildTinyGuest(dir: string): TinyGuest {
  const found = findHostTools();
  if ('missing' in found) throw new Error(`tiny guest: missing ${found.missing.join(', ')}`);
  const { qemu, kernel, busybox } = found.tools;
  const boot = ensureBootImage(kernel, cacheDir(ROOT));
  const entries: CpioEntry[] = busyboxEntries(busybox);
  const order: string[] = [];
  for (const load of moduleLoadOrder(kernel.version, MODULES)) {
    const { name, data } = moduleBytes(load.path);
    entries.push({ type: 'file', name: `modules/${name}`, data });
    order.push(load.params ? `${name} ${load.params}` : name);
  }
  entries.push({ type: 'file', name: 'modules/order', data: Buffer.from(order.join('\n') + '\n') });
  entries.push({ type: 'file', name: 'init', data: Buffer.from(INIT), mode: 0o755 });
  const initramfs = join(dir, 'tiny-guest.cpio');
  writeFileSync(initramfs, cpioNewc(entries));
  return {
    qemu,
    kernel: boot.path,
    initramfs,
    args: (cpus = 1) => [
      '-nodefaults', '-no-user-config', '-no-reboot', '-display', 'none', '-accel', 'tcg', '-cpu', 'max',
      '-smp', String(cpus), '-m', '256', '-serial', 'stdio', '-monitor', 'none',
      '-kernel', boot.path, '-initrd', initramfs,
      '-append', 'console=ttyS0 panic=-1 loglevel=3 tsc=reliable no_timer_check cryptomgr.notests',
    ],
  };
}
