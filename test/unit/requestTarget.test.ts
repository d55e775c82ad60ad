/** parseRequestTarget: the path of every target the server serves; a value (never an exception) for the rest. */
import * as assert from 'node:assert/strict';
import { MAX_TARGET_LENGTH, parseRequestTarget } from '../../src/server/requestTarget';

describe('server request target', () => {
  it('gives the path of origin-form and absolute-form targets', () => {
    const cases: Array<[string, string]> = [
      ['/healthz', '/healthz'],
      ['/v1/sync?x=1#f', '/v1/sync'],
      ['//v1/sync', '//v1/sync'], // a path, not host "v1"
      ['/a/../healthz', '/healthz'],
      ['http://example:8420/v1/spaces?x', '/v1/spaces'],
      ['wss://example/v1/sync', '/v1/sync'],
    ];
    for (const [target, pathname] of cases) assert.deepEqual(parseRequestTarget(target), { ok: true, pathname }, target);
  });

  it('refuses the rest without throwing', () => {
    for (const target of [undefined, '', '*', 'http://[::1', 'http://x:99999/', 'http://%zz/', 'example.com:443', 'ftp://x/healthz', 'javascript:alert(1)', 'healthz', '/' + 'a'.repeat(MAX_TARGET_LENGTH)]) {
      const r = parseRequestTarget(target);
      assert.equal(r.ok, false, String(target));
    }
  });
});
