/** Join links and the names of joined space files: hostile input is refused with its rule, never guessed at. */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { joinLinkFor, MAX_JOIN_QUERY_LENGTH, parseJoinLink } from '../../src/views/team/joinLink';
import { fileStemFor, freeSpaceFile, newFileProblem } from '../../src/views/team/spaceFileName';
import { idBefore } from '../../src/views/team/teamApi';

const ID = '0123456789abcdef0123456789abcdef';

describe('team: join links', () => {
  it('parses a link and round-trips what joinLinkFor makes', () => {
    const link = joinLinkFor('spaces-vscode.spaces-vscode', { url: 'https://spaces.example.com', spaceId: ID });
    const u = new URL(link);
    assert.equal(u.protocol, 'vscode:');
    const r = parseJoinLink(u.pathname, u.search.slice(1));
    assert.deepEqual(r, { ok: true, link: { url: 'https://spaces.example.com', spaceId: ID } });
    // ws forms and the sync path normalize to the base URL.
    const ws = parseJoinLink('/join', `server=${encodeURIComponent('ws://127.0.0.1:8787/v1/sync')}&space=${ID}`);
    assert.deepEqual(ws, { ok: true, link: { url: 'http://127.0.0.1:8787', spaceId: ID } });
  });

  it('refuses hostile links with the rule they break', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['/evil', `server=http://h&space=${ID}`, /unknown link path/],
      ['/join', `space=${ID}`, /no server/],
      ['/join', 'server=http://h', /no space/],
      ['/join', `server=http://h&space=${ID}&space=${ID}`, /more than once/],
      ['/join', `server=http://h&server=http://i&space=${ID}`, /more than once/],
      ['/join', `server=http://h&space=${ID}&token=spt_x`, /unknown link parameter/],
      ['/join', 'server=http://h&space=../../etc/passwd', /space must be/],
      ['/join', `server=http://h&space=${ID.toUpperCase()}`, /space must be/],
      ['/join', `server=file:///etc/passwd&space=${ID}`, /server:/],
      ['/join', `server=javascript:alert(1)&space=${ID}`, /server:/],
      ['/join', `server=${encodeURIComponent('http://user:pw@h')}&space=${ID}`, /user name or password/],
      ['/join', `server=${encodeURIComponent('http://h/?x=1')}&space=${ID}`, /query or a fragment/],
      ['/join', `server=${encodeURIComponent('http://h/#f')}&space=${ID}`, /query or a fragment/],
      ['/join', `server=&space=${ID}`, /server:/],
      ['/join', `server=http://${'a'.repeat(MAX_JOIN_QUERY_LENGTH)}&space=${ID}`, /longer than/],
    ];
    for (const [p, q, re] of cases) {
      const r = parseJoinLink(p, q);
      assert.equal(r.ok, false, `${p}?${q}`);
      if (!r.ok) assert.match(r.reason, re, `${p}?${q}`);
    }
  });
});

describe('team: the file of a joined space', () => {
  it('makes a file name, never a path, from any space name', () => {
    assert.equal(fileStemFor('Team Plan'), 'Team Plan');
    assert.equal(fileStemFor('../../etc/passwd'), 'etc-passwd');
    assert.equal(fileStemFor('a/b\\c:d*e?"f<g>|h'), 'a-b-c-d-e-f-g-h');
    assert.equal(fileStemFor('..'), 'Space');
    assert.equal(fileStemFor(''), 'Space');
    assert.equal(fileStemFor('\u0000\u001f'), 'Space');
    assert.equal(fileStemFor('Ünïcödé 日本'), 'Ünïcödé 日本');
    assert.ok(fileStemFor('x'.repeat(1000)).length <= 80);
    for (const n of ['../x', 'a/b', '/abs', 'C:\\w']) assert.ok(!/[\\/]/.test(fileStemFor(n)), n);
  });

  it('picks the first free name and checks typed ones', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-join-name-'));
    try {
      assert.equal(freeSpaceFile(dir, 'Team'), path.join(dir, 'Team.space'));
      fs.writeFileSync(path.join(dir, 'Team.space'), '');
      fs.writeFileSync(path.join(dir, 'Team (2).space'), '');
      assert.equal(freeSpaceFile(dir, 'Team'), path.join(dir, 'Team (3).space'));
      assert.match(newFileProblem(path.join(dir, 'Team.space')) ?? '', /exists already/);
      assert.match(newFileProblem(path.join(dir, 'Team.txt')) ?? '', /ends with \.space/);
      assert.match(newFileProblem(path.join(dir, 'missing', 'x.space')) ?? '', /does not exist/);
      assert.equal(newFileProblem(path.join(dir, 'New.space')), undefined);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('idBefore gives the id just before, so a page of one starts at the id', () => {
    assert.equal(idBefore('00000000000000000000000000000001'), '00000000000000000000000000000000');
    assert.equal(idBefore('000000000000000000000000000000a0'), '0000000000000000000000000000009f');
    assert.equal(idBefore('10000000000000000000000000000000'), '0fffffffffffffffffffffffffffffff');
    assert.equal(idBefore('00000000000000000000000000000000'), undefined);
    const b = idBefore(ID);
    assert.ok(b !== undefined && b < ID);
    assert.throws(() => idBefore('xyz'), TypeError);
  });
});
