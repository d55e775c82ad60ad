/**
 * A child process that opens a server data directory (migrating an older store schema) and
 * closes it again, for the store migration crash test.
 *
 *   node storeOpenChild.js DIR   → prints "opened", exits 0
 */
import { ServerStore } from '../../src/server/store/serverStore';

const store = ServerStore.open(process.argv[2], { secretKey: Buffer.alloc(32, 1) });
store.close();
process.stdout.write('opened\n');
