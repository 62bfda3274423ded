// `aqa index merge <dirs...> --out <dir>`: join the parts of a multi-machine build (aqa index
// --shard i/n, one directory each) into one index.
//
// Each part holds whole shard files, embedded exactly as a one-machine build embeds them (a shard
// is embedded on its own), under their whole-index names, plus the whole corpus's pids.json. So
// the merge only checks and copies: the parts must share the identity (model, settings, corpus)
// and n, cover parts 0..n-1 exactly once and be finished, and every shard file must still have
// its recorded sha256. The result is what one machine writes: the same pids.json and shard bytes,
// and the same manifest but for the build times (per-shard seconds, created = the earliest
// part's, updated = the latest part's, so merging the same parts twice gives the same bytes).
// It is written under a temporary name and renamed into place, so a crash leaves no half index.

import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type IndexManifest, type IndexPart, identityDiff, parseIndexManifest, parsePids, shardCount } from '../core/retrieval/index-format.ts';
import { writeFileAtomic, writeModelFolderAtomic } from './files.ts';
import { IndexError, readManifestFile, sha256 } from './index-store.ts';

interface Part {
  dir: string;
  manifest: IndexManifest;
  part: IndexPart;
}

export interface MergeResult {
  manifest: IndexManifest;
  /** Bytes of shard files copied. */
  bytes: number;
}

async function readPart(dir: string): Promise<Part> {
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory()) throw new IndexError(`${dir}: no such directory (expected a part built by aqa index --shard i/n)`);
  const manifest = await readManifestFile(join(dir, 'manifest.json'));
  if (!manifest) throw new IndexError(`${dir}: not an index part (no manifest.json)`);
  if (!manifest.part) throw new IndexError(`${dir}: a whole index, not a part (built without --shard); merge takes the directories of aqa index --shard i/n`);
  return { dir, manifest, part: manifest.part };
}

/** The parts in part order, after every check that needs no shard bytes. */
function checkParts(parts: Part[]): Part[] {
  const [a] = parts;
  for (const p of parts.slice(1)) {
    const diff = identityDiff(a.manifest.identity, p.manifest.identity);
    if (diff.length) throw new IndexError(`${p.dir}: built with another model, settings or corpus than ${a.dir} (${diff.join('; ')}); build every part with the same aqa index command`);
    if (p.part.of !== a.part.of) throw new IndexError(`${p.dir}: part ${p.part.index} of ${p.part.of}, but ${a.dir} is part ${a.part.index} of ${a.part.of}; build every part with the same n`);
  }
  const n = a.part.of;
  const byIndex = new Map<number, Part>();
  for (const p of parts) {
    const seen = byIndex.get(p.part.index);
    if (seen) throw new IndexError(`duplicate part ${p.part.index} of ${n}: ${seen.dir} and ${p.dir}`);
    byIndex.set(p.part.index, p);
  }
  const missing = [...Array(n).keys()].filter((i) => !byIndex.has(i));
  if (missing.length) {
    const list = missing.length > 10 ? `${missing.slice(0, 10).join(', ')}, ... (${missing.length} in all)` : missing.join(', ');
    throw new IndexError(`missing part${missing.length > 1 ? 's' : ''} ${list} of ${n}; build ${missing.length > 1 ? 'them' : 'it'} with aqa index --shard i/${n} and merge again`);
  }
  const ordered = [...Array(n).keys()].map((i) => byIndex.get(i) as Part);
  for (const p of ordered) {
    if (!p.manifest.complete) {
      const want = p.part.endShard - p.part.firstShard;
      throw new IndexError(`${p.dir}: part ${p.part.index} of ${n} is unfinished (${p.manifest.shards.length} of ${want} shards); run its aqa index --shard ${p.part.index}/${n} command again to finish it`);
    }
  }
  return ordered;
}

async function readBytes(path: string, why: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new IndexError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ${why}`);
  }
}

/** `out` must not exist, or be an empty directory: a merge never overwrites an index. */
async function checkOut(out: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(out);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    throw new IndexError(`--out ${out}: ${code === 'ENOTDIR' ? 'not a directory' : `cannot read (${code})`}`);
  }
  if (entries.length) throw new IndexError(`--out ${out}: exists and is not empty; merge into a new directory (or remove this one first)`);
}

/** Check the part directories and write their merged index to `out` (see the file comment). */
export async function mergeIndexParts(dirs: string[], out: string): Promise<MergeResult> {
  if (!dirs.length) throw new IndexError('no part directories given');
  await checkOut(out);
  const parts = checkParts(await Promise.all(dirs.map(readPart)));
  const [a] = parts;
  const id = a.manifest.identity;

  // Every part wrote the whole corpus's pids.json; the corpus hash says they agree, this says
  // no file was damaged or swapped since.
  const pidsBytes = await readBytes(join(a.dir, 'pids.json'), `rerun aqa index --shard ${a.part.index}/${a.part.of} to rewrite it`);
  try {
    parsePids(pidsBytes.toString('utf8'), id.count, join(a.dir, 'pids.json'));
  } catch (e) {
    throw new IndexError((e as Error).message);
  }
  const pidsSha = sha256(pidsBytes);
  for (const p of parts.slice(1)) {
    const b = await readBytes(join(p.dir, 'pids.json'), `rerun aqa index --shard ${p.part.index}/${p.part.of} to rewrite it`);
    if (sha256(b) !== pidsSha) throw new IndexError(`${join(p.dir, 'pids.json')}: differs from ${join(a.dir, 'pids.json')} although the corpus is the same; rerun aqa index --shard ${p.part.index}/${p.part.of} to rewrite it`);
  }

  const shards = parts.flatMap((p) => p.manifest.shards);
  // Same fields in the same order as node/index-store.ts buildIndex writes them.
  const manifest: IndexManifest = {
    format: a.manifest.format,
    version: a.manifest.version,
    identity: id,
    model: a.manifest.model,
    corpus: a.manifest.corpus,
    shards,
    complete: true,
    created: parts.map((p) => p.manifest.created).sort()[0],
    updated: parts.map((p) => p.manifest.updated).sort().at(-1) as string,
  };
  const text = `${JSON.stringify(manifest, null, 2)}\n`;
  // By construction a whole index; parse it as one so a bug here cannot write a broken index.
  const whole = parseIndexManifest(text, join(out, 'manifest.json'));
  if (!whole.complete || shards.length !== shardCount(id.count, id.shardSize)) throw new IndexError(`${out}: the parts do not add up to the whole index`);

  let bytes = 0;
  // writeModelFolderAtomic copies nothing here (the pattern skips every entry of the first part):
  // every file is written by the callback, into a temporary folder renamed to `out` at the end.
  await writeModelFolderAtomic(a.dir, out, /^/, async (tmp) => {
    for (const p of parts) {
      for (const s of p.manifest.shards) {
        const path = join(p.dir, s.file);
        const why = `rerun aqa index --shard ${p.part.index}/${p.part.of} (it rebuilds a damaged shard)`;
        const b = await readBytes(path, why);
        if (b.length !== s.bytes || sha256(b) !== s.sha256) throw new IndexError(`${path}: contents differ from ${join(p.dir, 'manifest.json')}; ${why}`);
        await writeFileAtomic(join(tmp, s.file), b);
        bytes += b.length;
      }
    }
    await writeFileAtomic(join(tmp, 'pids.json'), pidsBytes);
    await writeFileAtomic(join(tmp, 'manifest.json'), text);
  });
  return { manifest, bytes };
}

export interface MergeCommandOptions {
  out: string;
  export?: string;
  corpus?: string;
  credit?: string;
}

/** The command: merge, then optionally the browser export (as aqa index --export writes it). */
export async function runIndexMerge(dirs: string[], o: MergeCommandOptions): Promise<void> {
  const [{ info, warn }, store] = await Promise.all([import('./command-model.ts'), import('./index-store.ts')]);
  const r = await mergeIndexParts(dirs, o.out);
  const id = r.manifest.identity;
  info(`merged ${dirs.length} part(s): ${r.manifest.shards.length} shards, ${id.count} x ${id.dim} ${id.dtype} (${r.bytes} bytes) in ${o.out}`);
  if (!o.export) return;
  const corpus = o.corpus ?? r.manifest.corpus.file;
  if ((await store.sha256File(corpus)) !== id.corpusSha256) throw new IndexError(`${corpus}: not the corpus the parts were built from (its sha256 differs); pass that file with --corpus`);
  const e = await store.exportIndex(await store.openIndex(o.out), o.export, corpus, { credit: o.credit });
  if (e.missing) warn(`${e.missing} indexed pid(s) not found in ${corpus}: exported without title or snippet`);
  info(`exported ${id.count} x ${id.dim} ${id.dtype} to ${o.export}`);
}
