import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { NativeAddon, NativeBinding } from './binding.js';
import { NativeError } from './errors.js';

export type { NativeBinding, RecvResult, InetDatagram, PeerCred, Poller, CloserStats } from './binding.js';
export { NativeError, asNativeError, isErrno } from './errors.js';

const ABI_VERSION = 5;

let loaded: NativeBinding | undefined;

/** The package's root (dist/src/native/index.js -> ../../..) and the addon under it. */
const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');
const ADDON = `${PACKAGE_ROOT}/build/Release/ontap_native.node`;

/**
 * The addon cannot be used: never built (install scripts skipped), built for another Node, or
 * from another version of this package. `fix` is the command that rebuilds it where it lies.
 */
export class NativeLoadError extends Error {
  constructor(readonly addonPath: string, readonly problem: string, readonly fix: string) {
    super(`the native addon ${addonPath} ${problem}: run ${fix}`);
  }
}
Object.defineProperty(NativeLoadError.prototype, 'name', { value: 'NativeLoadError', configurable: true, writable: true });

function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command that rebuilds the addon for this copy of the package: global, dependency or checkout. */
export function rebuildCommand(root: string = PACKAGE_ROOT): string {
  const global = /^(.*)\/lib\/node_modules\/([^/]+)$/.exec(root);
  if (global) return `npm rebuild -g --prefix ${shellWord(global[1] || '/')} ${global[2]}`;
  const dependency = /^(.*)\/node_modules\/([^/]+)$/.exec(root);
  if (dependency) return `(cd ${shellWord(dependency[1] || '/')} && npm rebuild ${dependency[2]})`;
  return `(cd ${shellWord(root)} && npm install)`;
}

/** What went wrong, in a few words, from the loader's error. */
function loadProblem(e: unknown): string {
  const err = e as { code?: string; message?: string };
  const first = String(err.message ?? e).split('\n')[0]!;
  if (err.code === 'MODULE_NOT_FOUND') return 'is missing (was the install script skipped?)';
  const abi = /NODE_MODULE_VERSION (\d+)[^]*?NODE_MODULE_VERSION (\d+)/.exec(String(err.message));
  if (abi) return `was built for another Node.js (module version ${abi[1]}, this one needs ${abi[2]})`;
  return `cannot be loaded (${first.replace(`${ADDON}: `, '')})`;
}

/**
 * Loads build/Release/ontap_native.node once; throws NativeLoadError if it cannot. Tests may swap the binding with setNative().
 * The path is resolved from this file (dist/src/native/index.js -> build/Release).
 */
export function native(): NativeBinding {
  if (loaded === undefined) {
    const require = createRequire(import.meta.url);
    let binding: NativeAddon;
    try {
      binding = require(ADDON) as NativeAddon;
    } catch (e) {
      throw new NativeLoadError(ADDON, loadProblem(e), rebuildCommand());
    }
    if (binding.abiVersion !== ABI_VERSION) {
      throw new NativeLoadError(ADDON, `has ABI ${String(binding.abiVersion)}, this package needs ${ABI_VERSION}`, rebuildCommand());
    }
    // From now on the addon throws NativeError instances itself: no per-call wrapping.
    binding.setErrorConstructor(NativeError);
    loaded = binding;
  }
  return loaded;
}

export function setNative(binding: NativeBinding): void {
  loaded = binding;
}
