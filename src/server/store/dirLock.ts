/**
 * One server per data directory: `DIR/server.lock` holds the pid of the server using it. The
 * server keeps the state vectors and seqs of its loaded spaces in memory, so a second server on
 * the same directory would serve stale state. A lock left by a process that no longer runs (a
 * SIGKILLed server) is taken over. The `token` commands do not take the lock.
 */
import fs from 'node:fs';
import path from 'node:path';
import { StoreError } from './database';

export const LOCK_FILE = 'server.lock';

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the directory's lock; returns its release function. Throws StoreError when it is taken. */
export function lockDataDir(dataDir: string): () => void {
  const file = path.join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      let released = false;
      return () => {
        if (released) return;
        released = true;
        fs.rmSync(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    if (Number.isSafeInteger(pid) && pid > 0 && running(pid)) {
      throw new StoreError(`another server (pid ${pid}) is using this data directory (${LOCK_FILE})`);
    }
    fs.rmSync(file, { force: true }); // stale: its process is gone
  }
  throw new StoreError(`cannot take ${LOCK_FILE} in the data directory`);
}
