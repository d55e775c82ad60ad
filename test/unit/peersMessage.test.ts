/** The `peers` message from a server: hostile content is refused whole (a ProtocolError), never half-taken. */
import * as assert from 'node:assert/strict';
import { CloseCode, PROTOCOL_LIMITS, ProtocolError, parseServerMessage } from '../../src/protocol/messages';

const SPACE = '0123456789abcdef0123456789abcdef';
const frame = (peers: unknown, spaceId: unknown = SPACE): string => JSON.stringify({ type: 'peers', spaceId, peers });

describe('protocol: peers messages', () => {
  it('parses peer id → user maps', () => {
    const m = parseServerMessage(frame({ abc123: 'alice', constructor: 'bob' }));
    assert.equal(m.type, 'peers');
    if (m.type !== 'peers') return;
    assert.equal(m.spaceId, SPACE);
    assert.deepEqual({ ...m.peers }, { abc123: 'alice', constructor: 'bob' });
    // A peer id that is a name on Object.prototype stays data.
    assert.equal(Object.getPrototypeOf(m.peers), null);
  });

  it('refuses bad peer ids, users, spaces and sizes', () => {
    const bad: unknown[] = [
      frame(['alice']),
      frame(null),
      frame({ 'UPPER': 'alice' }),
      frame({ 'a-b': 'alice' }),
      frame({ ['p'.repeat(65)]: 'alice' }),
      frame({ p1: '' }),
      frame({ p1: 7 }),
      frame({ p1: 'a'.repeat(PROTOCOL_LIMITS.maxUserLength + 1) }),
      frame({ p1: 'line\nbreak' }),
      frame({ p1: 'nul\u0000' }),
      frame({ p1: 'alice' }, 'not-a-space'),
      frame({ p1: 'alice' }, null),
    ];
    for (const f of bad) assert.throws(() => parseServerMessage(f as string), ProtocolError, String(f).slice(0, 80));
    const many: Record<string, string> = {};
    for (let i = 0; i <= PROTOCOL_LIMITS.maxPeersPerMessage; i++) many[`p${i}`] = 'u';
    assert.throws(() => parseServerMessage(frame(many)), (e: unknown) => e instanceof ProtocolError && e.closeCode === CloseCode.tooLarge);
  });
});
