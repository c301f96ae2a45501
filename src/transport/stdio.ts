// Channels over byte streams with newline-delimited JSON: our own stdin/stdout facing the
// client, and a child process's stdin/stdout facing the upstream.
import type { Readable, Writable } from 'node:stream';
import { LineReader } from '../jsonrpc/framing.js';
import type { JsonRpcId } from '../jsonrpc/message.js';
import { parseFrame, type Channel, type Inbound } from './channel.js';
import { SentRequests } from './sent-requests.js';

export interface StreamChannelOptions {
  input: Readable;
  output: Writable;
  maxMessageBytes: number;
  /** Deepest nesting accepted in a message (see jsonrpc/depth.ts). */
  maxDepth: number;
  onMessage(ev: Inbound): void;
  /** The input ended (the peer closed its end). */
  onEnd(): void;
  /** When set, the peer's answers are delivered only for requests sent through this channel
   * and still awaiting one (see sent-requests.ts); any other answer is dropped, and its id
   * handed here. */
  onUnsolicitedAnswer?(id: JsonRpcId): void;
}

export class StreamChannel implements Channel {
  private readonly output: Writable;
  private outputBroken = false;
  private readonly requests?: SentRequests;

  constructor(private readonly opts: StreamChannelOptions) {
    this.output = opts.output;
    const unsolicited = opts.onUnsolicitedAnswer;
    const requests = unsolicited ? new SentRequests() : undefined;
    this.requests = requests;
    const reader = new LineReader(opts.maxMessageBytes, (frame) => {
      const ev: Inbound = frame.kind === 'line' ? parseFrame(frame.text, opts.maxDepth) : { kind: 'oversize', bytes: frame.bytes, limit: opts.maxMessageBytes };
      const id = requests && (ev.kind === 'message' || ev.kind === 'too_deep') ? requests.unsolicited(ev.value) : undefined;
      if (id !== undefined) unsolicited?.(id);
      else opts.onMessage(ev);
    });
    opts.input.on('data', (chunk: Buffer) => reader.push(chunk));
    opts.input.on('end', () => {
      reader.end();
      opts.onEnd();
    });
    opts.input.on('error', () => opts.onEnd());
    // A peer that stops reading must not crash the proxy; its messages are simply lost.
    this.output.on('error', () => {
      this.outputBroken = true;
    });
  }

  send(message: unknown): void {
    this.sendRaw(JSON.stringify(message), message);
  }

  sendRaw(text: string, message?: unknown): void {
    if (this.outputBroken || this.output.writableEnded) return;
    this.requests?.sent(message);
    // Messages sent in one turn of the event loop leave in one write (writev): our stdout is
    // written synchronously, one system call per write, and a busy proxy sends many per turn.
    if (this.output.writableCorked === 0) {
      this.output.cork();
      process.nextTick(uncork, this.output);
    }
    this.output.write(text + '\n');
  }

  /** Stop reading until `resume` (backpressure from the other side). */
  pause(): void {
    this.opts.input.pause();
  }

  resume(): void {
    this.opts.input.resume();
  }

  /** True when the output's buffer is over its high-water mark. */
  get congested(): boolean {
    return this.output.writableNeedDrain;
  }

  end(): void {
    if (!this.output.writableEnded) this.output.end();
  }
}

function uncork(output: Writable): void {
  output.uncork();
}
