/**
 * TokenWatch over a real store: a change committed by another connection reaches every holder in
 * the next round (one lookup per token), no change hands back the token held (expiry only), and
 * a holder that throws neither stops the others nor escapes the timer.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import { silentLogger } from '../../src/server/log';
import { ServerStore } from '../../src/server/store/serverStore';
import { SqliteSpaceStore } from '../../src/server/store/sqliteSpaceStore';
import type { TokenInfo } from '../../src/server/store/tokenStore';
import { MIN_TOKEN_RECHECK_MS, TokenWatch, tokenRecheckInterval, type TokenHolder } from '../../src/server/tokenWatch';
import { makeToken, revokeToken, tempDir } from '../helpers/syncServer';

class Holder implements TokenHolder {
  readonly seen: Array<TokenInfo | undefined> = [];
  constructor(
    public tokenInfo: TokenInfo | undefined,
    private readonly fail = false,
  ) {}
  applyToken(fresh: TokenInfo | undefined): void {
    if (this.fail) throw new Error('injected failure');
    this.seen.push(fresh);
  }
}

describe('server token watch', () => {
  let dir: string;
  let store: ServerStore;
  let watch: TokenWatch | undefined;
  beforeEach(() => {
    dir = tempDir();
    store = ServerStore.open(dir);
  });
  afterEach(() => {
    watch?.dispose();
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('hands every holder the stored token after another connection changed it; a throwing holder stays its own', async () => {
    const { id } = makeToken(dir, 'write');
    const info = store.tokens.get(id) as TokenInfo;
    const a = new Holder(info);
    const broken = new Holder(info, true);
    const b = new Holder(info);
    const idle = new Holder(undefined);
    watch = new TokenWatch({ tokens: new SqliteSpaceStore(store).tokens, intervalMs: 60_000, holders: () => [a, broken, b, idle], logger: silentLogger });
    await watch.start();
    await watch.tick();
    assert.deepEqual(a.seen, [info], 'no change: the token held, for its expiry');
    revokeToken(dir, id); // its own connection, as the token commands do
    await watch.tick();
    assert.equal(a.seen.length, 2);
    assert.notEqual(a.seen[1]?.revoked, null);
    assert.deepEqual(b.seen[1], a.seen[1]);
    assert.deepEqual(idle.seen, [], 'no token yet: nothing to check');
    // The server's own writes do not move the stamp.
    store.tokens.create({ user: 'x', space: '*', role: 'read' });
    const before = store.tokens.changeStamp();
    store.tokens.setRole(id, 'read');
    assert.equal(store.tokens.changeStamp(), before);
  });

  it('refuses intervals that would only burn CPU', () => {
    assert.equal(tokenRecheckInterval(undefined), 250);
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, MIN_TOKEN_RECHECK_MS - 1]) assert.throws(() => tokenRecheckInterval(bad), RangeError);
  });
});
