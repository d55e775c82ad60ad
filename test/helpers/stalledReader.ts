/**
 * A WebSocket client that stops reading at the TCP level: a raw handshake over `net.connect`,
 * masked client frames written by hand, then `socket.pause()`. The server's bytes pile up in
 * the kernel's buffers and then in the server, as with a client that hangs or reads on purpose
 * slowly. It is what the server's per-socket bound and slow-consumer close are tested and
 * measured against (tests and bench/sync.ts). `resume()` reads again and parses what arrived,
 * so a test can see the close frame (or the TCP end) that the server sent.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { PROTOCOL_VERSION, encodeMessage, type ClientMessage } from '../../src/protocol/messages';

export interface UpgradeAnswer {
  /** HTTP status of the answer to the upgrade (101 when accepted). */
  readonly status: number;
  readonly headers: Record<string, string>;
  /** The body of a refusal (empty for 101). */
  readonly body: string;
}

/** A masked client frame (RFC 6455 §5.2): text (opcode 1) or close (8). */
export function clientFrame(payload: Buffer, opcode = 1): Buffer {
  const mask = randomBytes(4);
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | opcode, 0x80 | n]) : n < 65_536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (n >= 126 && n < 65_536) {
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(n, 2);
  } else if (n >= 65_536) {
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = payload[i] ^ mask[i % 4];
  return Buffer.concat([head, mask, body]);
}

export class StalledReader {
  /** Bytes read after the upgrade (frames), while reading. */
  private rest: Buffer = Buffer.alloc(0);
  private endedValue = false;
  private readonly ended: Promise<void>;
  /** The close code the server sent, once a close frame has been read. */
  closeCode: number | undefined;
  /** Payload bytes of text frames read so far. */
  textBytes = 0;

  private constructor(
    readonly socket: net.Socket,
    readonly answer: UpgradeAnswer,
    head: Buffer,
  ) {
    this.rest = head;
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.ended.then(() => (this.endedValue = true));
    socket.on('error', () => undefined);
  }

  /**
   * Connects to `url` (http://host:port), sends the upgrade request for `path`; resolves once the
   * answer's head has arrived. The socket keeps reading until `stall()`.
   */
  static connect(url: string, path = '/v1/sync', headers: Record<string, string> = {}): Promise<StalledReader> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: u.hostname, port: Number(u.port) });
      let buf = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        socket.off('error', reject);
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])?.[1] ?? 0);
        const h: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          if (i > 0) h[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        let head = buf.subarray(end + 4);
        let body = '';
        if (status !== 101) {
          body = head.toString('utf8');
          head = Buffer.alloc(0);
        }
        const r = new StalledReader(socket, { status, headers: h, body }, head);
        if (status !== 101) {
          // A refusal: collect the rest of the body until the server closes.
          socket.on('data', (more: Buffer) => ((r.answer as { body: string }).body += more.toString('utf8')));
        } else {
          socket.on('data', (more: Buffer) => r.onFrames(more));
          r.onFrames(Buffer.alloc(0));
        }
        resolve(r);
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.once('connect', () => {
        const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
        );
      });
    });
  }

  /** Connects, says hello with `token`, subscribes to `spaceId` since `since`, and stops reading. */
  static async subscribeAndStall(url: string, token: string, spaceId: string, since = 0, peerId = 'stalled'): Promise<StalledReader> {
    const r = await StalledReader.connect(url);
    if (r.answer.status !== 101) return r;
    r.send({ type: 'hello', protocol: PROTOCOL_VERSION, token, peerIds: [peerId] });
    r.send({ type: 'subscribe', spaceId, since });
    r.stall();
    return r;
  }

  get accepted(): boolean {
    return this.answer.status === 101;
  }

  /** The server closed the TCP connection (or it failed). */
  get isEnded(): boolean {
    return this.endedValue;
  }

  /** Resolves when the TCP connection has closed. */
  whenEnded(): Promise<void> {
    return this.ended;
  }

  send(m: ClientMessage): void {
    this.socket.write(clientFrame(Buffer.from(encodeMessage(m))));
  }

  /** Stops reading: the kernel's receive buffer fills, then the server's send path backs up. */
  stall(): void {
    this.socket.pause();
  }

  /** Reads again (and parses the frames that arrive). */
  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Parses server frames (unmasked) as they arrive; notes text bytes and the close code. */
  private onFrames(d: Buffer): void {
    this.rest = this.rest.length ? Buffer.concat([this.rest, d]) : d;
    for (;;) {
      const b = this.rest;
      if (b.length < 2) return;
      const opcode = b[0] & 0x0f;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b.length < off + len) return;
      const payload = b.subarray(off, off + len);
      if (opcode === 1) this.textBytes += len;
      if (opcode === 8 && len >= 2) this.closeCode = payload.readUInt16BE(0);
      this.rest = b.subarray(off + len);
    }
  }
}
