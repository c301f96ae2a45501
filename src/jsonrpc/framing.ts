// Newline-delimited JSON framing (MCP's stdio transport) with a hard cap on message size.
// A line longer than the cap is never buffered whole: its bytes are dropped as they arrive
// and one `oversize` event is emitted, so a hostile peer cannot exhaust memory.

export type Frame = { kind: 'line'; text: string } | { kind: 'oversize'; bytes: number };

const NEWLINE = 0x0a;

export class LineReader {
  private parts: Buffer[] = [];
  private size = 0;
  /** Bytes of the current over-long line seen so far, or -1 when not skipping. */
  private skipped = -1;

  constructor(
    private readonly maxBytes: number,
    private readonly emit: (frame: Frame) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl === -1 ? chunk.length : nl;
      this.take(chunk.subarray(start, end));
      if (nl === -1) return;
      this.endLine();
      start = nl + 1;
    }
  }

  /** The stream ended: a final line without a newline still counts. */
  end(): void {
    if (this.size > 0 || this.skipped >= 0) this.endLine();
  }

  private take(piece: Buffer): void {
    if (piece.length === 0) return;
    if (this.skipped >= 0) {
      this.skipped += piece.length;
      return;
    }
    if (this.size + piece.length > this.maxBytes) {
      this.skipped = this.size + piece.length;
      this.parts = [];
      this.size = 0;
      return;
    }
    this.parts.push(piece);
    this.size += piece.length;
  }

  private endLine(): void {
    if (this.skipped >= 0) {
      const bytes = this.skipped;
      this.skipped = -1;
      this.emit({ kind: 'oversize', bytes });
      return;
    }
    const buf = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    let text = buf.toString('utf8');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (text.trim() !== '') this.emit({ kind: 'line', text });
  }
}

/** Parses "4MiB", "512KiB", "1048576", "10MB" into bytes; null when unreadable. */
export function parseByteSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|k|mb|mib|m|gb|gib|g)?\s*$/i.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult =
    unit === 'b' ? 1 : unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1024 * 1024 * 1024;
  const bytes = Math.floor(n * mult);
  return bytes > 0 ? bytes : null;
}
