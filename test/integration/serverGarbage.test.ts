/**
 * Nothing a peer sends before (or instead of) a WebSocket handshake may end the server process:
 * the built server (dist/server.js) gets garbage request lines, headers and upgrade requests over
 * raw TCP sockets — invalid absolute URLs, bad ports, `*`, huge and odd request lines, bad header
 * bytes, duplicated and garbage headers, upgrades to bad paths and with bad targets, half requests
 * cut off. A bad target gets 400 (JSON on HTTP, a bare 400 on upgrade). Afterwards the same
 * process still serves /healthz and real sync clients.
 */
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { SyncClient, converge } from '../helpers/syncClients';
import { makeToken, spawnServer, tempDir, type ChildServer } from '../helpers/syncServer';

/** How long one exchange may take before it counts as a hang (the server answers in milliseconds). */
const EXCHANGE_MS = 10_000;
const KEY = randomBytes(16).toString('base64');
const UPGRADE_HEADERS = `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n`;

interface Exchange {
  /** Everything the server wrote before it closed the socket. */
  readonly bytes: Buffer;
  /** The status code of the first response line, if there was one. */
  readonly status: number | undefined;
  readonly body: string;
}

interface Case {
  readonly name: string;
  /** Byte chunks written in order (each its own write). */
  readonly send: Array<string | Buffer>;
  /** 'end': half-close after sending (the server answers and closes); 'destroy': cut the socket off at once. */
  readonly then: 'end' | 'destroy';
  /** Expected status; undefined: any answer or none, as long as the process lives. */
  readonly status?: number;
  /** The body must be a JSON `{"error": string}`. */
  readonly jsonError?: boolean;
}

const BAD_TARGETS = ['http://[::1', 'http://127.0.0.1:99999/healthz', 'http://[::1]:99999/v1/sync', '*', 'ftp://example/healthz', 'http://%zz/', 'example.com:443', 'healthz'];

const get = (target: string, headers = 'Host: x\r\n'): string => `GET ${target} HTTP/1.1\r\n${headers}\r\n`;

function cases(): Case[] {
  const out: Case[] = [];
  for (const t of BAD_TARGETS) {
    out.push({ name: `HTTP, target ${t}`, send: [get(t)], then: 'end', status: 400, jsonError: true });
    out.push({ name: `upgrade, target ${t}`, send: [get(t, `Host: x\r\n${UPGRADE_HEADERS}`)], then: 'end', status: 400 });
  }
  out.push(
    { name: 'OPTIONS *', send: ['OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n'], then: 'end', status: 400, jsonError: true },
    { name: 'CONNECT authority-form', send: ['CONNECT 127.0.0.1:99999 HTTP/1.1\r\nHost: x\r\n\r\n'], then: 'end' },
    { name: 'a 100 KiB request line', send: [get('/' + 'a'.repeat(100 * 1024))], then: 'end', status: 431, jsonError: true },
    { name: 'a 100 KiB absolute target', send: [get('http://x:99999/' + 'a'.repeat(100 * 1024))], then: 'end', status: 431, jsonError: true },
    { name: 'a 7 KiB absolute target with a bad port', send: [get('http://x:99999/' + 'a'.repeat(7 * 1024))], then: 'end', status: 400, jsonError: true },
    { name: '10,000 headers', send: [`GET /healthz HTTP/1.1\r\n${'X-A: b\r\n'.repeat(10_000)}\r\n`], then: 'end', status: 431, jsonError: true },
    { name: 'no HTTP version', send: ['GET /healthz\r\n\r\n'], then: 'end' },
    { name: 'an unknown version', send: ['GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n'], then: 'end' },
    { name: 'a lowercase method and tabs', send: ['get\t/healthz\tHTTP/1.1\r\n\r\n'], then: 'end' },
    { name: 'only line breaks', send: ['\r\n\r\n\r\n\r\n'], then: 'end' },
    { name: 'random binary', send: [randomBytes(4096)], then: 'end', status: 400, jsonError: true },
    { name: 'a TLS ClientHello on the plain port', send: [Buffer.from('16030100a5010000a10303', 'hex'), randomBytes(160)], then: 'end' },
    { name: 'NUL and control bytes in a header value', send: [Buffer.concat([Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: '), Buffer.from([0, 1, 2, 0x7f, 0xff]), Buffer.from('\r\n\r\n')])], then: 'end', status: 400, jsonError: true },
    { name: 'a header name with a space', send: ['GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n'], then: 'end', status: 400, jsonError: true },
    { name: 'a header without a colon', send: ['GET /healthz HTTP/1.1\r\nnocolon\r\n\r\n'], then: 'end', status: 400, jsonError: true },
    { name: 'two Host headers', send: ['GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'], then: 'end' },
    { name: 'a garbage Host', send: [Buffer.concat([Buffer.from('GET /healthz HTTP/1.1\r\nHost: '), Buffer.from([0xfe, 0xff, 0x80]), Buffer.from('[::1:99999\r\n\r\n')])], then: 'end' },
    { name: 'two Authorization headers', send: ['GET /v1/spaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer spt_a\r\nAuthorization: Bearer spt_b\r\n\r\n'], then: 'end', status: 401, jsonError: true },
    { name: 'a garbage Authorization', send: [Buffer.concat([Buffer.from('GET /v1/spaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer '), Buffer.from([0xc3, 0x28, 0xa0, 0xa1]), Buffer.from('\r\n\r\n')])], then: 'end', status: 401, jsonError: true },
    { name: 'a 10 KiB Authorization', send: [`GET /v1/spaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer spt_${'A'.repeat(10 * 1024)}\r\n\r\n`], then: 'end', status: 401, jsonError: true },
    { name: 'two different Content-Lengths', send: ['POST /v1/spaces HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello'], then: 'end' },
    { name: 'a negative Content-Length', send: ['POST /v1/spaces HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'], then: 'end' },
    { name: 'a bad chunk', send: ['POST /v1/spaces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n'], then: 'end' },
    { name: 'a body shorter than its Content-Length', send: ['POST /v1/spaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer spt_x\r\nContent-Length: 100\r\n\r\n{"na'], then: 'end' },
    { name: 'upgrade to a bad path', send: [get('/nope', `Host: x\r\n${UPGRADE_HEADERS}`)], then: 'end', status: 404 },
    { name: 'upgrade to //v1/sync', send: [get('//v1/sync', `Host: x\r\n${UPGRADE_HEADERS}`)], then: 'end', status: 404 },
    { name: 'upgrade with two Sec-WebSocket-Keys', send: [get('/v1/sync', `Host: x\r\n${UPGRADE_HEADERS}Sec-WebSocket-Key: ${KEY}\r\n`)], then: 'end', status: 400 },
    { name: 'upgrade with a garbage Sec-WebSocket-Key', send: [get('/v1/sync', 'Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: !!!\r\nSec-WebSocket-Version: 13\r\n')], then: 'end', status: 400 },
    { name: 'upgrade with two Upgrade headers', send: [get('/v1/sync', `Host: x\r\n${UPGRADE_HEADERS}Upgrade: h2c\r\n`)], then: 'end', status: 400 },
    { name: 'upgrade to something else', send: [get('/v1/sync', 'Host: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n')], then: 'end', status: 400 },
    { name: 'upgrade with version 99', send: [get('/v1/sync', `Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 99\r\n`)], then: 'end' },
    { name: 'upgrade by POST', send: [`POST /v1/sync HTTP/1.1\r\nHost: x\r\n${UPGRADE_HEADERS}Content-Length: 0\r\n\r\n`], then: 'end' },
    { name: 'upgrade with two Authorization headers', send: [get('/v1/sync', `Host: a\r\nHost: b\r\nAuthorization: Bearer x\r\nAuthorization: y\r\n${UPGRADE_HEADERS}`)], then: 'end' },
    { name: 'upgrade with garbage right after the headers', send: [get('/v1/sync', `Host: x\r\n${UPGRADE_HEADERS}`), randomBytes(512)], then: 'end' },
    { name: 'upgrade with an absolute target, then cut off', send: [get('http://127.0.0.1:1/v1/sync?%zz', `Host: x\r\n${UPGRADE_HEADERS}`)], then: 'destroy' },
    { name: 'half a request line, cut off', send: ['GET http://[::1'], then: 'destroy' },
    { name: 'half the headers, cut off', send: ['GET /healthz HTTP/1.1\r\nHost: x\r\nAuthoriz'], then: 'destroy' },
    { name: 'half an upgrade, half-closed', send: [`GET /v1/sync HTTP/1.1\r\nHost: x\r\n${UPGRADE_HEADERS}`], then: 'end' },
    { name: 'an upgrade request trickled byte by byte, bad target', send: [...get('http://[::1', `Host: x\r\n${UPGRADE_HEADERS}`)], then: 'end', status: 400 },
  );
  return out;
}

function exchange(port: number, c: Case): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${c.name}: the server neither answered nor closed within ${EXCHANGE_MS} ms`));
    }, EXCHANGE_MS);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => undefined); // a reset by the server is an answer too
    socket.on('close', () => {
      clearTimeout(timer);
      const bytes = Buffer.concat(chunks);
      const text = bytes.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(text);
      const split = text.indexOf('\r\n\r\n');
      resolve({ bytes, status: m ? Number(m[1]) : undefined, body: split >= 0 ? text.slice(split + 4) : '' });
    });
    socket.once('connect', () => {
      for (const chunk of c.send) socket.write(chunk);
      if (c.then === 'end') socket.end();
      else socket.destroy();
    });
  });
}

/** The process answers /healthz; if it does not, fails with how it ended and its stderr. */
async function assertAlive(server: ChildServer, when: string): Promise<void> {
  let status: number | string;
  try {
    status = (await fetch(`${server.url}/healthz`)).status;
  } catch (e) {
    status = String((e as Error).cause ?? e);
  }
  if (status === 200) return;
  const ended = server.child.exitCode !== null || server.child.signalCode !== null ? `exit ${server.child.exitCode ?? server.child.signalCode}` : 'still running';
  assert.fail(`the server does not serve /healthz ${when} (${status}; ${ended}): ${server.stderr().slice(0, 2000)}`);
}

describe('team server: garbage before the handshake', function () {
  this.timeout(120_000);
  let dir: string;
  let clientDir: string;
  let server: ChildServer | undefined;
  const clients: SyncClient[] = [];

  before(async () => {
    dir = tempDir();
    clientDir = tempDir('spaces-garbage-clients-');
    server = await spawnServer(dir);
  });
  after(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    if (server !== undefined && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(clientDir, { recursive: true, force: true });
  });

  it('every garbage request gets an answer or a close; the process lives and still serves /healthz and sync clients', async () => {
    if (!server) throw new Error('no server');
    const port = Number(new URL(server.url).port);
    const admin = makeToken(dir, 'admin').token;
    for (const c of cases()) {
      const r = await exchange(port, c);
      await assertAlive(server, `after "${c.name}"`);
      if (c.status !== undefined) assert.equal(r.status, c.status, `${c.name}: ${r.bytes.toString('latin1').slice(0, 200)}`);
      if (c.jsonError) assert.match(r.body, /^\{"error":"[^"]+"\}$/, `${c.name}: body ${r.body}`);
    }
    // Garbage from many sockets at once, too.
    await Promise.all(cases().map((c) => exchange(port, c)));
    await assertAlive(server, 'after all of them at once');

    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { ok: boolean }).ok, true);
    const created = await fetch(`${server.url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` }, body: JSON.stringify({ name: 'After the garbage' }) });
    assert.equal(created.status, 201);
    const spaceId = ((await created.json()) as { id: string }).id;
    const a = await SyncClient.open(clientDir, 'a', server.url, admin, spaceId);
    clients.push(a);
    const b = await SyncClient.open(clientDir, 'b', server.url, admin, spaceId);
    clients.push(b);
    const notes = a.space.createAppTree('notes', 'Notes');
    notes.addItem(notes.rootId, { text: 'still here' });
    await converge([a, b]);
    assert.deepEqual((await b.space.openAppTree(notes.id)).dump(), notes.dump());
    assert.deepEqual(
      server.lines.filter((l) => /"msg":"[a-z ]*fault"/.test(l)),
      [],
      'no request reached a fault',
    );
  });
});
