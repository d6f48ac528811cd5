import type { ErrorCode, ProtocolError } from '../protocol/messages.js';

/**
 * A request that fails in a way the client should hear about: becomes an ErrorReply. It is an
 * answer to the caller, never a bug of ontapd's, so it carries no stack: capturing one cost ~10 us
 * per refused request, and a caller decides how many of those ontapd makes (the combined hostile
 * run: 10,000-20,000 in 20 s).
 */
export class RequestError extends Error {
  override readonly name = 'RequestError';
  constructor(readonly code: ErrorCode, message: string, readonly field?: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message); // (never throws: a string message)
    Error.stackTraceLimit = limit;
  }

  toProtocol(): ProtocolError {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, field: this.field };
  }
}
