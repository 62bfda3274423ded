// One `aqa pipeline` per work dir at a time.

import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** One pipeline per work dir at a time: a lock file with the owner's pid (a dead owner's is taken over). */
export async function takeLock(workDir: string): Promise<() => Promise<void>> {
  const path = join(workDir, '.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return () => unlink(path).catch(() => {});
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (pid && pid !== process.pid && isAlive(pid)) throw new Error(`${workDir}: another aqa pipeline (pid ${pid}) is running there; wait for it or remove ${path}`);
      await unlink(path).catch(() => {});
    }
  }
  throw new Error(`${path}: cannot take the lock`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
