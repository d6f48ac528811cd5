/**
 * The uncompressed kernel, extracted once from /boot/vmlinuz-KVER into the cache.
 *
 * Debian's bzImage is xz-compressed; under TCG its decompressor alone takes about 5 s of every boot.
 * qemu boots an uncompressed vmlinux directly through its PVH entry point (CONFIG_PVH, an ELF note),
 * so the harness extracts the payload (the bzImage header says where it is) once, checks that the
 * result is an ELF with that note, and boots it. If anything in that fails it boots the bzImage.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { which, type Kernel } from './host.js';

const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/** The compressed payload of a bzImage and the tool that expands it. */
export function bzImagePayload(image: Buffer): { data: Buffer; format: 'gzip' | 'xz' | 'zstd' | 'lzma' | 'lz4' | 'bzip2' | 'lzo' | 'unknown' } {
  // Boot protocol (Documentation/x86/boot.rst): "HdrS" at 0x202, setup_sects at 0x1f1,
  // payload_offset/payload_length at 0x248/0x24c (protocol 2.08+), relative to the protected-mode code.
  if (image.length < 0x250 || image.toString('ascii', 0x202, 0x206) !== 'HdrS') throw new Error('not a bzImage');
  if (image.readUInt16LE(0x206) < 0x208) throw new Error('bzImage boot protocol older than 2.08');
  const setupSects = image[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + image.readUInt32LE(0x248);
  const data = image.subarray(start, start + image.readUInt32LE(0x24c));
  const magic = data.subarray(0, 6);
  const format =
    magic[0] === 0x1f && magic[1] === 0x8b ? 'gzip'
    : magic.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) ? 'xz'
    : magic.readUInt32LE(0) === 0xfd2fb528 ? 'zstd'
    : magic[0] === 0x5d && magic[1] === 0x00 ? 'lzma'
    : magic.readUInt32LE(0) === 0x184c2102 ? 'lz4'
    : magic.toString('ascii', 0, 3) === 'BZh' ? 'bzip2'
    : magic[0] === 0x89 && magic.toString('ascii', 1, 4) === 'LZO' ? 'lzo'
    : 'unknown';
  return { data, format };
}

/** True if `elf` is a 64-bit ELF with a Xen PVH entry note (what qemu needs to boot it directly). */
export function hasPvhNote(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return false;
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (elf.readUInt32LE(ph) !== 4 /* PT_NOTE */) continue;
    let off = Number(elf.readBigUInt64LE(ph + 8));
    const end = off + Number(elf.readBigUInt64LE(ph + 32));
    while (off + 12 <= end) {
      const namesz = elf.readUInt32LE(off);
      const descsz = elf.readUInt32LE(off + 4);
      const type = elf.readUInt32LE(off + 8);
      const name = elf.toString('ascii', off + 12, off + 12 + Math.max(0, namesz - 1));
      if (name === 'Xen' && type === XEN_ELFNOTE_PHYS32_ENTRY) return true;
      off += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
    }
  }
  return false;
}

function expand(payload: Buffer, format: string): Buffer {
  if (format === 'gzip') return gunzipSync(payload);
  const tools: Record<string, string[]> = {
    xz: ['xz', '-dc', '--single-stream'],
    lzma: ['xz', '-dc', '--format=lzma'],
    zstd: ['zstd', '-dcq'],
    lz4: ['lz4', '-dc'],
    bzip2: ['bzip2', '-dc'],
    lzo: ['lzop', '-dc'],
  };
  const cmd = tools[format];
  if (!cmd) throw new Error(`unknown compression of the kernel payload`);
  const bin = which(cmd[0]!);
  if (!bin) throw new Error(`${cmd[0]} is not installed`);
  return execFileSync(bin, cmd.slice(1), { input: payload, maxBuffer: 1 << 30 });
}

export interface BootImage {
  /** What to pass to qemu -kernel. */
  path: string;
  /** 'pvh' = the extracted vmlinux, 'bzimage' = /boot/vmlinuz itself. */
  kind: 'pvh' | 'bzimage';
  cached: boolean;
  /** Why the bzImage is booted, when it is. */
  note?: string;
}

/** The vmlinux for `kernel` from the cache, extracted now if needed, or the bzImage if that fails. */
export function ensureBootImage(kernel: Kernel, cacheDir: string): BootImage {
  const st = statSync(kernel.image);
  const name = `vmlinux-${kernel.version}-${st.size}-${Math.floor(st.mtimeMs)}`;
  const path = join(cacheDir, name);
  try {
    if (statSync(path).size > 0) return { path, kind: 'pvh', cached: true };
  } catch {
    // not extracted yet
  }
  try {
    const { data, format } = bzImagePayload(readFileSync(kernel.image));
    const elf = expand(data, format);
    if (!hasPvhNote(elf)) throw new Error('the kernel has no PVH entry point (CONFIG_PVH)');
    mkdirSync(cacheDir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, elf);
    renameSync(tmp, path);
    for (const old of readdirSync(cacheDir)) {
      if (old.startsWith(`vmlinux-${kernel.version}-`) && old !== basename(path) && !old.endsWith('.tmp')) {
        try {
          unlinkSync(join(cacheDir, old));
        } catch {
          // gone already
        }
      }
    }
    return { path, kind: 'pvh', cached: false };
  } catch (err) {
    return { path: kernel.image, kind: 'bzimage', cached: false, note: err instanceof Error ? err.message : String(err) };
  }
}
