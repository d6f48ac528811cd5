/**
 * What the VM harness needs from the host: qemu, a Debian kernel with its modules, a static busybox.
 * Nothing here starts a VM; see qemu.ts.
 */
import { accessSync, constants, existsSync, openSync, readSync, closeSync, readdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The one-line hint printed when something is missing. */
export const INSTALL_HINT = 'apt-get install qemu-system-x86 linux-image-amd64 busybox-static';

export interface Kernel {
  /** /boot/vmlinuz-KVER */
  image: string;
  /** KVER, e.g. 6.1.0-50-amd64 */
  version: string;
  /** /lib/modules/KVER */
  modulesDir: string;
}

export interface HostTools {
  qemu: string;
  kernel: Kernel;
  busybox: string;
}

/** The first executable called `name` on PATH (plus the sbin directories, which a user's PATH may lack). */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      if (statSync(path).isFile()) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Compares version strings part by part, numerically where both parts are numbers (6.10 > 6.9). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.\-+~_]/);
  const pb = b.split(/[.\-+~_]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    const c = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x.localeCompare(y);
    if (c !== 0) return c;
  }
  return 0;
}

/**
 * The kernel to boot: $ONTAP_VM_KERNEL if set (its version taken from the name vmlinuz-KVER), else
 * the newest /boot/vmlinuz-KVER that has /lib/modules/KVER.
 */
export function findKernel(env: NodeJS.ProcessEnv = process.env): Kernel | undefined {
  const override = env.ONTAP_VM_KERNEL;
  const candidates: string[] = [];
  if (override) {
    candidates.push(override);
  } else {
    let names: string[] = [];
    try {
      names = readdirSync('/boot');
    } catch {
      return undefined;
    }
    candidates.push(
      ...names
        .filter((n) => n.startsWith('vmlinuz-'))
        .sort((a, b) => compareVersions(b.slice(8), a.slice(8)))
        .map((n) => join('/boot', n)),
    );
  }
  for (const image of candidates) {
    const m = /vmlinuz-(.+)$/.exec(image);
    if (!m || !existsSync(image)) continue;
    const version = m[1]!;
    const modulesDir = join('/lib/modules', version);
    if (existsSync(join(modulesDir, 'modules.dep'))) return { image, version, modulesDir };
  }
  return undefined;
}

/** True if the ELF file at `path` has no PT_INTERP (so it runs without a dynamic loader). */
export function isStaticElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const h = Buffer.alloc(64);
    if (readSync(fd, h, 0, 64, 0) < 64 || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) {
      return false; // not a little-endian 64-bit ELF
    }
    const phoff = Number(h.readBigUInt64LE(32));
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      if (ph.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

/** A statically linked busybox (the initramfs has no libc): busybox-static's /bin/busybox. */
export function findBusybox(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [env.ONTAP_VM_BUSYBOX, '/bin/busybox', '/usr/bin/busybox', which('busybox')];
  for (const c of candidates) {
    if (c && existsSync(c)) {
      try {
        if (isStaticElf(c)) return c;
      } catch {
        // unreadable: try the next one
      }
    }
  }
  return undefined;
}

/** Everything the harness needs, or the list of what is missing. */
export function findHostTools(env: NodeJS.ProcessEnv = process.env): { tools: HostTools } | { missing: string[] } {
  const qemu = env.ONTAP_VM_QEMU ? (existsSync(env.ONTAP_VM_QEMU) ? env.ONTAP_VM_QEMU : undefined) : which('qemu-system-x86_64');
  const kernel = findKernel(env);
  const busybox = findBusybox(env);
  const missing: string[] = [];
  if (!qemu) missing.push('qemu-system-x86_64');
  if (!kernel) missing.push('a /boot/vmlinuz-* with its /lib/modules');
  if (!busybox) missing.push('a static busybox');
  if (!qemu || !kernel || !busybox) return { missing };
  return { tools: { qemu, kernel, busybox } };
}
