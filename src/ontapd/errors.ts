import type { ErrorCode, ProtocolError } from '../protocol/messages.js';

/** A request that fails in a way the client should hear about: becomes an ErrorReply. */
export class RequestError extends Error {
  override readonly name = 'RequestError';
  constructor(readonly code: ErrorCode, message: string, readonly field?: string) {
    super(message);
  }

  toProtocol(): ProtocolError {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, field: this.field };
  }
}
