/**
 * One id rule for every edge: an id the op validator accepts is accepted by the file schema and
 * by the editor's webview protocol, and the hex rule of spaces and trees is the same in the wire
 * protocol, the HTTP API's client and the settings.
 */
import assert from 'node:assert/strict';
import { isValidTreeId } from '../../src/persistence/file/schema';
import { ID_RULES, isAppId, isHexId, isPeerId, isVertexId } from '../../src/spaces/ids';
import { newVertexId } from '../../src/spaces/appTree';
import { newPeerId } from '../../src/spaces/peerId';
import { validateOps, type Op } from '../../src/spaces/ops';
import { BadMessageError, parseWebviewMessage } from '../../src/webview/protocol';

const VERTEX_IDS = ['a', 'a.b:c', 'x_y-z', '123e4567-e89b-12d3-a456-426614174000', 'Z'.repeat(128), newVertexId()];
const NOT_VERTEX_IDS = ['', 'a b', 'a/b', 'é', 'Z'.repeat(129), 'a\u0000'];

function setTextEdit(id: string): unknown {
  return { type: 'edit', seq: 1, treeId: id, edit: { op: 'setText', id, text: 'x' } };
}

function opOn(targetId: string): Op {
  return { id: { counter: 1, peerId: 'p' }, targetId, key: 'text', value: 'x', transient: false };
}

describe('ids: one rule per kind of id', () => {
  it('every vertex id an op may target is a tree id of a file and an item id of the editor', () => {
    for (const v of VERTEX_IDS) {
      assert.ok(isVertexId(v), v);
      assert.doesNotThrow(() => validateOps([opOn(v)], 'tree', 'test'), v);
      assert.ok(isValidTreeId(v), v);
      assert.deepEqual(parseWebviewMessage(setTextEdit(v)), { type: 'edit', seq: 1, treeId: v, edit: { op: 'setText', id: v, text: 'x' } });
    }
  });

  it('an id no op may target is refused by all three, with the rule in the message', () => {
    for (const v of NOT_VERTEX_IDS) {
      assert.ok(!isVertexId(v), v);
      assert.throws(() => validateOps([opOn(v)], 'tree', 'test'), Error, v);
      assert.ok(!isValidTreeId(v), v);
      assert.throws(() => parseWebviewMessage(setTextEdit(v)), (e: unknown) => e instanceof BadMessageError && e.message.includes(ID_RULES.vertex));
    }
  });

  it('the ids this project makes satisfy the narrow rules', () => {
    for (let i = 0; i < 100; i++) {
      assert.ok(isHexId(newVertexId()));
      assert.ok(isPeerId(newPeerId()));
    }
    assert.ok(!isHexId('A'.repeat(32)));
    assert.ok(!isHexId('a'.repeat(31)));
    assert.ok(isAppId('notes') && isAppId('my.app-2') && !isAppId('2app') && !isAppId('App'));
    assert.ok(!isPeerId('Peer') && !isPeerId('') && !isPeerId('a'.repeat(65)));
  });
});
