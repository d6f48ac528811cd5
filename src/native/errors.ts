/**
 * The one error shape of the native addon. The addon constructs these itself (index.ts registers
 * the class at load), so `instanceof NativeError` holds for synchronous throws, poller callbacks
 * and sendmsgAsync callbacks alike, with no wrapping on the hot path.
 */
export class NativeError extends Error {
  /** Positive errno value (EAGAIN = 11). Node's own system errors use negative numbers. */
  readonly errno: number;
  /** Symbolic name: 'EAGAIN', 'ENOENT', ... */
  readonly code: string;
  /** The failing call: 'sendmsg', 'setns', 'uv_poll_start', ... */
  readonly syscall: string;

  constructor(message: string, errno: number, code: string, syscall: string) {
    super(message);
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
  }
}

Object.defineProperty(NativeError.prototype, 'name', { value: 'NativeError', configurable: true, writable: true });

export function asNativeError(e: unknown): NativeError | undefined {
  return e instanceof NativeError ? e : undefined;
}

/**
 * True when `e` is a system error with this code: a NativeError or one of Node's own
 * (fs, net, child_process), which share the `code` and `syscall` properties.
 */
export function isErrno(e: unknown, code: string): e is Error & { code: string; syscall: string } {
  return (
    e instanceof Error &&
    (e as { code?: unknown }).code === code &&
    typeof (e as { syscall?: unknown }).syscall === 'string'
  );
}
