/** The server store conformance suite over a real PostgreSQL (a fresh database per test). */
import { randomBytes } from 'node:crypto';
import { PostgresSpaceStore } from '../../src/server/store/postgresStore';
import { TestPostgres } from '../helpers/postgres';
import { storeConformance } from './serverStoreConformance';

let pg: TestPostgres | undefined;
before(async function () {
  this.timeout(120_000);
  pg = await TestPostgres.start();
});
after(async () => {
  await pg?.stop();
});

storeConformance('PostgreSQL', () => {
  let url = '';
  const key = randomBytes(32);
  const server = (): TestPostgres => {
    if (!pg) throw new Error('PostgreSQL did not start');
    return pg;
  };
  return {
    open: async () => {
      url = await server().createDatabase();
      return PostgresSpaceStore.open(url, { secretKey: key });
    },
    openAgain: () => PostgresSpaceStore.open(url, { secretKey: key }),
  };
});
