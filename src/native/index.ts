import { createRequire } from 'node:module';
import type { NativeAddon, NativeBinding } from './binding.js';
import { NativeError } from './errors.js';

export type { NativeBinding, RecvResult, PeerCred, Poller } from './binding.js';
export { NativeError, asNativeError, isErrno } from './errors.js';

const ABI_VERSION = 1;

let loaded: NativeBinding | undefined;

/**
 * Loads build/Release/ontap_native.node once. Tests may swap the binding with setNative().
 * The path is resolved from this file (dist/src/native/index.js -> build/Release).
 */
export function native(): NativeBinding {
  if (loaded === undefined) {
    const require = createRequire(import.meta.url);
    const binding = require('../../../build/Release/ontap_native.node') as NativeAddon;
    if (binding.abiVersion !== ABI_VERSION) {
      throw new Error(`ontap_native.node has ABI ${binding.abiVersion}, expected ${ABI_VERSION}: run npm install`);
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
