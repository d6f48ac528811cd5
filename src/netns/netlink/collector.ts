import { netlinkErrorFrom, parseDone, parseError } from './ack.js';
import { NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN } from './constants.js';
import { DumpInterruptedError, errnoNumber, NetlinkError } from './errors.js';
import { HeaderFlag } from './flags.js';
import { decodeMessages, type NetlinkMessage } from './message.js';

/**
 * What ends an exchange:
 * - 'ack': an NLMSG_ERROR (0 = success) for a request sent with NLM_F_ACK;
 * - 'object': the first reply message (a GET without NLM_F_ACK), or an NLMSG_ERROR;
 * - 'dump': NLMSG_DONE (or an NLMSG_ERROR) for a request with NLM_F_DUMP.
 */
export type ReplyMode = 'ack' | 'object' | 'dump';

/**
 * The receive side of one request, without I/O: feed it datagrams, it keeps the replies that are
 * ours and says when the exchange is over. Checks, in iproute2's rtnl_dump_filter_l order: the
 * sender (datagrams whose sender port id is not 0 are not from the kernel and are dropped), the
 * port id and sequence number of every message (stale replies to an earlier, timed-out request are
 * dropped), NLM_F_DUMP_INTR (remembered until DONE, then DumpInterruptedError), NLMSG_DONE and
 * NLMSG_ERROR (NetlinkError with the extended ack).
 */
export class ReplyCollector {
  readonly messages: NetlinkMessage[] = [];
  /** Messages (or whole datagrams) ignored because they were not ours. */
  dropped = 0;
  private interrupted = false;
  private finished = false;

  constructor(
    readonly op: string,
    readonly seq: number,
    readonly portId: number,
    readonly mode: ReplyMode,
  ) {}

  get done(): boolean {
    return this.finished;
  }

  /**
   * Feeds one datagram. Returns true once the exchange is complete. Throws NetlinkError,
   * DumpInterruptedError or NetlinkDecodeError (malformed bytes) to end it with a failure.
   */
  feed(datagram: Buffer, senderPortId: number | undefined): boolean {
    if (this.finished) return true;
    if (senderPortId !== undefined && senderPortId !== 0) {
      this.dropped++;
      return false;
    }
    for (const msg of decodeMessages(datagram)) {
      if (this.finished) break;
      const h = msg.header;
      if (h.seq !== this.seq || h.pid !== this.portId) {
        this.dropped++;
        continue;
      }
      if ((h.flags & HeaderFlag.dumpIntr) !== 0) this.interrupted = true;
      switch (h.type) {
        case NLMSG_NOOP:
          break;
        case NLMSG_OVERRUN:
          throw new NetlinkError({ op: this.op, errno: errnoNumber('ENOBUFS') ?? 105, seq: this.seq, extack: 'NLMSG_OVERRUN: data lost' });
        case NLMSG_ERROR: {
          const ack = parseError(msg);
          if (ack.errno !== 0) throw netlinkErrorFrom(this.op, this.seq, ack);
          this.finish();
          break;
        }
        case NLMSG_DONE: {
          const done = parseDone(msg);
          if (done.errno !== 0) throw netlinkErrorFrom(this.op, this.seq, done);
          this.finish();
          break;
        }
        default:
          this.messages.push(msg);
          if (this.mode === 'object') this.finish();
      }
    }
    return this.finished;
  }

  private finish(): void {
    this.finished = true;
    if (this.interrupted) throw new DumpInterruptedError(this.op, this.seq, 1);
  }
}
