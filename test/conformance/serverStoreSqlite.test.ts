/** The server store conformance suite over SQLite (a fresh data directory per test). */
import fs from 'node:fs';
import { SqliteSpaceStore } from '../../src/server/store/sqliteSpaceStore';
import { tempDir } from '../helpers/syncServer';
import { storeConformance } from './serverStoreConformance';

const dirs: string[] = [];
after(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

storeConformance('SQLite', () => {
  let dir = '';
  return {
    open: () => {
      dir = tempDir('spaces-store-');
      dirs.push(dir);
      return Promise.resolve(SqliteSpaceStore.open(dir));
    },
    openAgain: () => Promise.resolve(SqliteSpaceStore.open(dir)),
  };
});
