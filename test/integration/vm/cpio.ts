/**
 * A writer for the "newc" cpio format (the one the kernel unpacks as an initramfs; see the kernel's
 * Documentation/driver-api/early-userspace/buffer-format.rst). Only what an initramfs needs:
 * directories, regular files, symlinks and device nodes, all owned by root, mtime 0, so the same
 * entries always give the same bytes.
 */

export type CpioEntry =
  | { type: 'dir'; name: string; mode?: number }
  | { type: 'file'; name: string; data: Buffer; mode?: number }
  | { type: 'symlink'; name: string; target: string }
  | { type: 'char'; name: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const TRAILER = 'TRAILER!!!';

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio: field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function record(ino: number, mode: number, nlink: number, rdev: [number, number], name: string, data: Buffer): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const header =
    '070701' +
    hex8(ino) +
    hex8(mode) +
    hex8(0) + // uid
    hex8(0) + // gid
    hex8(nlink) +
    hex8(0) + // mtime
    hex8(data.length) +
    hex8(0) + // devmajor
    hex8(0) + // devminor
    hex8(rdev[0]) +
    hex8(rdev[1]) +
    hex8(nameBytes.length) +
    hex8(0); // check
  const head = Buffer.from(header, 'ascii');
  return [
    head,
    nameBytes,
    Buffer.alloc(pad4(head.length + nameBytes.length)),
    data,
    Buffer.alloc(pad4(data.length)),
  ];
}

/** The archive for `entries`, in order (a directory must come before what it contains). */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const seen = new Set<string>();
  let ino = 1;
  for (const e of entries) {
    const name = e.name.replace(/^\/+/, '');
    if (name === '' || name.split('/').some((c) => c === '..' || c === '.')) {
      throw new Error(`cpio: bad entry name ${JSON.stringify(e.name)}`);
    }
    if (seen.has(name)) throw new Error(`cpio: duplicate entry ${name}`);
    seen.add(name);
    switch (e.type) {
      case 'dir':
        parts.push(...record(ino++, S_IFDIR | (e.mode ?? 0o755), 2, [0, 0], name, Buffer.alloc(0)));
        break;
      case 'file':
        parts.push(...record(ino++, S_IFREG | (e.mode ?? 0o644), 1, [0, 0], name, e.data));
        break;
      case 'symlink':
        parts.push(...record(ino++, S_IFLNK | 0o777, 1, [0, 0], name, Buffer.from(e.target, 'utf8')));
        break;
      case 'char':
        parts.push(...record(ino++, S_IFCHR | (e.mode ?? 0o600), 1, [e.major, e.minor], name, Buffer.alloc(0)));
        break;
    }
  }
  parts.push(...record(0, 0, 1, [0, 0], TRAILER, Buffer.alloc(0)));
  return Buffer.concat(parts);
}
