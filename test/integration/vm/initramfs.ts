/**
 * The guest's initramfs: a static busybox, the modules that mount the host's root over 9p (virtio-pci,
 * 9pnet_virtio, 9p and what they depend on, in the order modprobe would load them) and guest-init.sh
 * as /init. Built once per kernel and init script into the cache directory and reused.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync, accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { cpioNewc, type CpioEntry } from './cpio.js';
import { which, type Kernel } from './host.js';

/** The modules stage 1 needs to mount the host's root; their dependencies are added by modprobe. */
export const BOOT_MODULES = ['virtio_pci', '9pnet_virtio', '9p'] as const;

/** Bumped when the layout of the archive changes, so old cached archives are not reused. */
const FORMAT = 1;

export interface ModuleLoad {
  /** Absolute path under /lib/modules/KVER. */
  path: string;
  /** Parameters modprobe would pass (from modprobe.d), usually empty. */
  params: string;
}

/**
 * The insmod sequence modprobe would run for `modules` on kernel `version` (`modprobe -S KVER
 * --show-depends`, one module per call: modprobe takes the words after the first as parameters).
 * Built-in modules are left out. Each module appears once, at its first position.
 */
export function moduleLoadOrder(version: string, modules: readonly string[]): ModuleLoad[] {
  const modprobe = which('modprobe');
  if (!modprobe) throw new Error('modprobe (package kmod) not found: it computes the initramfs modules');
  const out: ModuleLoad[] = [];
  const seen = new Set<string>();
  for (const m of modules) {
    const text = execFileSync(modprobe, ['-S', version, '--show-depends', m], { encoding: 'utf8' });
    for (const line of text.split('\n')) {
      const insmod = /^insmod\s+(\S+)\s*(.*)$/.exec(line.trim());
      if (!insmod) continue; // "builtin NAME" or empty
      const path = insmod[1]!;
      if (seen.has(path)) continue;
      seen.add(path);
      out.push({ path, params: insmod[2]!.trim() });
    }
  }
  return out;
}

/** A module file's bytes, decompressed if the distribution compresses modules (busybox insmod cannot). */
/** The skeleton of a busybox initramfs: /bin/sh, /dev/console, mount points, /modules. */
export function busyboxEntries(busybox: string): CpioEntry[] {
  return [
    { type: 'dir', name: 'bin' },
    { type: 'file', name: 'bin/busybox', data: readFileSync(busybox), mode: 0o755 },
    { type: 'symlink', name: 'bin/sh', target: 'busybox' },
    { type: 'dir', name: 'dev' },
    // The kernel opens /dev/console for PID 1's stdio before anything mounts devtmpfs.
    { type: 'char', name: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { type: 'dir', name: 'proc' },
    { type: 'dir', name: 'sys' },
    { type: 'dir', name: 'modules' },
  ];
}

/** A module file's name and bytes, decompressed (.ko.gz/.ko.xz/.ko.zst) so busybox insmod can load it. */
export function moduleBytes(path: string): { name: string; data: Buffer } {
  const data = readFileSync(path);
  const base = basename(path);
  if (base.endsWith('.ko')) return { name: base, data };
  if (base.endsWith('.ko.gz')) return { name: base.slice(0, -3), data: gunzipSync(data) };
  for (const [ext, tool] of [['.ko.xz', 'xz'], ['.ko.zst', 'zstd']] as const) {
    if (base.endsWith(ext)) {
      const bin = which(tool);
      if (!bin) throw new Error(`${path} is compressed with ${tool}, which is not installed`);
      return { name: base.slice(0, -ext.length + 3), data: execFileSync(bin, ['-dc', path], { maxBuffer: 1 << 28 }) };
    }
  }
  throw new Error(`unexpected module file ${path}`);
}

/**
 * Where built archives are kept: $ONTAP_VM_CACHE, else <checkout>/.vm-cache (gitignored), else
 * $XDG_CACHE_HOME/ontap-vm (or ~/.cache/ontap-vm) when the checkout is not writable.
 */
export function cacheDir(root: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.ONTAP_VM_CACHE) return env.ONTAP_VM_CACHE;
  try {
    accessSync(root, constants.W_OK);
    return join(root, '.vm-cache');
  } catch {
    return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ontap-vm');
  }
}

export interface Initramfs {
  path: string;
  /** True if it was found in the cache, false if built now. */
  cached: boolean;
  /** The modules it loads, in order (basenames). */
  modules: string[];
}

/**
 * The initramfs for `kernel` with `initScript` as /init, from the cache or built now. The cache key is
 * the kernel version plus a hash of the init script, the module list (paths, sizes, mtimes) and
 * busybox (size, mtime); other archives for the same kernel are removed when a new one is built.
 */
export function ensureInitramfs(opts: { kernel: Kernel; busybox: string; initScript: string; cacheDir: string }): Initramfs {
  const { kernel, busybox, initScript } = opts;
  const loads = moduleLoadOrder(kernel.version, BOOT_MODULES);
  const hash = createHash('sha256');
  hash.update(`format ${FORMAT}\n`);
  hash.update(initScript);
  for (const file of [busybox, ...loads.map((l) => l.path)]) {
    const st = statSync(file);
    hash.update(`\n${file} ${st.size} ${st.mtimeMs}`);
  }
  for (const l of loads) hash.update(`\n${l.params}`);
  const key = hash.digest('hex').slice(0, 16);
  const prefix = `initramfs-${kernel.version}-`;
  const path = join(opts.cacheDir, `${prefix}${key}.cpio.gz`);
  const modules = loads.map((l) => basename(l.path).replace(/\.ko(\.\w+)?$/, '.ko'));
  try {
    if (statSync(path).size > 0) return { path, cached: true, modules };
  } catch {
    // not built yet
  }

  const entries: CpioEntry[] = [...busyboxEntries(busybox), { type: 'dir', name: 'newroot' }];
  const order: string[] = [];
  for (const l of loads) {
    const { name, data } = moduleBytes(l.path);
    entries.push({ type: 'file', name: `modules/${name}`, data });
    order.push(l.params ? `${name} ${l.params}` : name);
  }
  entries.push({ type: 'file', name: 'modules/order', data: Buffer.from(order.join('\n') + '\n') });
  entries.push({ type: 'file', name: 'init', data: Buffer.from(initScript), mode: 0o755 });

  mkdirSync(opts.cacheDir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, gzipSync(cpioNewc(entries), { level: 6 }));
  renameSync(tmp, path);
  for (const name of readdirSync(opts.cacheDir)) {
    if (name.startsWith(prefix) && name !== basename(path) && name.endsWith('.cpio.gz')) {
      try {
        unlinkSync(join(opts.cacheDir, name));
      } catch {
        // another run may have removed it
      }
    }
  }
  return { path, cached: false, modules };
}
