// Model resolution: a local directory is used as is; a Hugging Face Hub id (`owner/name`) is
// downloaded once into a cache and served from there afterwards with no network at all.
//
// Cache layout: <cacheDir>/<owner>--<name>/<revision>/ holding the files in Hub layout, plus
// `.aqa-download.json` (written last) listing what was fetched and which optional files the
// repo does not have. A revision is cached under its name: `main` is not re-checked for new
// commits; pass a commit sha for reproducible runs, or delete the folder to refresh.
//
// Downloads stream into `<file>.part` and are renamed only once complete and fsynced, so a
// crash never leaves a truncated file under the real name. A `.part` left by an interrupted
// download is resumed with an HTTP Range request. Two processes downloading the same model into
// the same cache at the same time are not supported.

import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { oneLine } from '../core/model/source.ts';
import { isHubId } from '../core/util/fields.ts';
import { writeFileAtomic } from './files.ts';

export interface ResolveModelOptions {
  /** Root of the model cache; default $AQA_CACHE, else ~/.cache/aqa/models. */
  cacheDir?: string;
  /** Default $HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Branch, tag or commit; default 'main'. */
  revision?: string;
  /** Bearer token; default $HF_TOKEN. Needed for gated or private models. */
  token?: string;
  /** Injected for tests; default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Retries per file after a dropped connection or HTTP 5xx/429, resuming the .part file. Default 3. */
  retries?: number;
  /** Base delay between retries in ms (multiplied by the attempt number). Default 1000. */
  retryDelayMs?: number;
  /** Bytes of `file` written so far (resumed bytes included) and its size (0 if the server sent none). */
  onProgress?: (file: string, loaded: number, total: number) => void;
}

/** Always needed. The weights (model.safetensors or its sharded index) are required too. */
export const REQUIRED_FILES = ['config.json', 'tokenizer.json'] as const;

/** Fetched when the repo has them; a 404 is fine. */
export const OPTIONAL_FILES = [
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.txt',
  'modules.json',
  '1_Pooling/config.json',
  'sentence_bert_config.json',
  'config_sentence_transformers.json',
] as const;

const MANIFEST = '.aqa-download.json';

export class HubError extends Error {
  override name = 'HubError';
  constructor(
    message: string,
    /** A dropped connection or a 5xx: trying again (resuming) may work. */
    readonly retryable = false,
  ) {
    super(oneLine(message));
  }
}

/** `owner/name` as the Hub spells repo ids (letters, digits, '-', '_', '.'; no '..'). */
export { isHubId };

export function defaultCacheDir(): string {
  return process.env.AQA_CACHE || join(homedir(), '.cache', 'aqa', 'models');
}

/** Where resolveModel keeps `id` at `revision`. */
export function modelCacheDir(id: string, revision = 'main', cacheDir = defaultCacheDir()): string {
  const [owner, name] = id.split('/');
  // Revisions may contain '/' (refs/pr/1): keep them one path segment.
  return join(resolve(cacheDir), `${owner}--${name}`, encodeURIComponent(revision));
}

interface Manifest {
  id: string;
  revision: string;
  files: string[];
  absent: string[];
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** A complete earlier download: manifest present and every file it lists still there. */
async function cachedComplete(dir: string, id: string, revision: string): Promise<boolean> {
  try {
    const m = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Manifest;
    if (m.id !== id || m.revision !== revision || !Array.isArray(m.files)) return false;
    for (const f of m.files) if (!(await isFile(join(dir, f)))) return false;
    return true;
  } catch {
    return false;
  }
}

/** Shard names come from a downloaded JSON file: keep them inside the model folder. */
function safeRelativePath(p: string): boolean {
  return p.length > 0 && !p.startsWith('/') && !p.includes('\\') && !p.split('/').some((s) => s === '..' || s === '' || s === '.');
}

function causeCode(e: unknown): string {
  const c = (e as { cause?: { code?: string; message?: string } }).cause;
  return c?.code ?? c?.message ?? (e as Error).message;
}

// Connection-level errors worth retrying (the server or a proxy dropped us); DNS failures and
// refused connections mean "no network" and fail at once.
const RETRYABLE_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

interface Ctx {
  id: string;
  revision: string;
  dir: string;
  endpoint: string;
  token: string | undefined;
  fetch: typeof fetch;
  retries: number;
  retryDelayMs: number;
  onProgress?: ResolveModelOptions['onProgress'];
  localHint: string;
}

function fileUrl(ctx: Ctx, file: string): string {
  return `${ctx.endpoint}/${ctx.id}/resolve/${encodeURIComponent(ctx.revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

/** One attempt; true = file now complete at its final path, false = optional and absent (404). */
async function downloadOnce(ctx: Ctx, file: string, required: boolean): Promise<boolean> {
  const dest = join(ctx.dir, file);
  const part = `${dest}.part`;
  const url = fileUrl(ctx, file);
  const have = await sizeOf(part);
  const headers: Record<string, string> = {};
  if (ctx.token) headers.authorization = `Bearer ${ctx.token}`;
  if (have > 0) headers.range = `bytes=${have}-`;

  let res: Response;
  try {
    res = await ctx.fetch(url, { headers, redirect: 'follow' });
  } catch (e) {
    const code = causeCode(e);
    throw new HubError(
      `cannot reach ${ctx.endpoint} to download ${ctx.id}/${file} (${code}): no network? Pass a local model directory, or set HF_ENDPOINT to a reachable mirror`,
      RETRYABLE_CODES.has(code),
    );
  }
  const drop = () => res.body?.cancel().catch(() => {});
  // Only the first file can tell "no such repo" apart from "repo lacks this file".
  const hint = file === REQUIRED_FILES[0] ? ctx.localHint : '';

  if (res.status === 404 && !required) {
    await drop();
    await rm(part, { force: true });
    return false;
  }
  if (res.status === 416 && have > 0) {
    // Our .part is not a prefix the server recognizes (file changed upstream): start over.
    await drop();
    await rm(part, { force: true });
    throw new HubError(`${ctx.id}: ${file}: server rejected resuming at byte ${have}; restarting`, true);
  }
  if (!res.ok) {
    await drop();
    const status = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
    if (res.status === 401 || res.status === 403) {
      throw new HubError(`${ctx.id}: ${file}: ${status} at ${url}: gated or private model (set HF_TOKEN to a token with access), or no such model${hint}`);
    }
    if (res.status === 404) throw new HubError(`${ctx.id}: ${file} not found (${status} at ${url}); check the model id and revision '${ctx.revision}'${hint}`);
    throw new HubError(`${ctx.id}: ${file}: ${status} at ${url}`, res.status >= 500 || res.status === 429);
  }

  let append = false;
  let total = 0;
  if (res.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== have) {
      await drop();
      await rm(part, { force: true });
      throw new HubError(`${ctx.id}: ${file}: unexpected Content-Range '${res.headers.get('content-range')}' when resuming at byte ${have}; restarting`, true);
    }
    append = true;
    total = m[3] === '*' ? 0 : Number(m[3]);
  } else {
    // A compressed body's Content-Length counts compressed bytes: only check uncompressed ones.
    const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
    total = encoded ? 0 : Number(res.headers.get('content-length') ?? 0) || 0;
  }
  if (!res.body) throw new HubError(`${ctx.id}: ${file}: empty response body`, true);

  await mkdir(dirname(dest), { recursive: true });
  const fh = await open(part, append ? 'a' : 'w');
  let loaded = append ? have : 0;
  try {
    const reader = res.body.getReader();
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new HubError(`${ctx.id}: ${file}: download interrupted after ${loaded}${total ? ` of ${total}` : ''} bytes (${causeCode(e)}); run again to resume`, true);
      }
      if (chunk.done) break;
      let off = 0;
      while (off < chunk.value.byteLength) off += (await fh.write(chunk.value, off)).bytesWritten;
      loaded += chunk.value.byteLength;
      ctx.onProgress?.(file, loaded, total);
    }
    if (total && loaded !== total) {
      throw new HubError(`${ctx.id}: ${file}: download ended after ${loaded} of ${total} bytes; run again to resume`, true);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(part, dest);
  return true;
}

async function download(ctx: Ctx, file: string, required: boolean): Promise<boolean> {
  if (await isFile(join(ctx.dir, file))) return true; // only complete files get the real name
  for (let attempt = 0; ; attempt++) {
    try {
      return await downloadOnce(ctx, file, required);
    } catch (e) {
      if (!(e instanceof HubError) || !e.retryable || attempt >= ctx.retries) throw e;
      await new Promise((r) => setTimeout(r, ctx.retryDelayMs * (attempt + 1)));
    }
  }
}

/**
 * A local directory with the model's files. `idOrDir` is used as is when it is a directory;
 * otherwise it must be a Hub id, downloaded (once) into the cache. Throws HubError with one line
 * naming the id and file on HTTP errors, or saying the network is unreachable.
 */
export async function resolveModel(idOrDir: string, opts: ResolveModelOptions = {}): Promise<string> {
  try {
    const st = await stat(idOrDir);
    if (st.isDirectory()) return resolve(idOrDir);
    throw new HubError(`${idOrDir}: is a file; expected a model directory or a Hub id like BAAI/bge-small-en-v1.5`);
  } catch (e) {
    if (e instanceof HubError) throw e;
  }
  if (!isHubId(idOrDir)) {
    throw new HubError(`'${idOrDir}' is neither an existing directory nor a Hub model id of the form owner/name`);
  }
  const revision = opts.revision ?? 'main';
  const dir = modelCacheDir(idOrDir, revision, opts.cacheDir ?? defaultCacheDir());
  if (await cachedComplete(dir, idOrDir, revision)) return dir;
  if (process.env.HF_HUB_OFFLINE === '1') {
    throw new HubError(`${idOrDir}: not in the cache (${dir}) and HF_HUB_OFFLINE=1; download it once with network access, or pass a local directory`);
  }

  const ctx: Ctx = {
    id: idOrDir,
    revision,
    dir,
    endpoint: (opts.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, ''),
    token: opts.token ?? process.env.HF_TOKEN ?? undefined,
    fetch: opts.fetch ?? globalThis.fetch,
    retries: opts.retries ?? 3,
    retryDelayMs: opts.retryDelayMs ?? 1000,
    onProgress: opts.onProgress,
    localHint: ` (no local directory '${idOrDir}' either)`,
  };
  await mkdir(dir, { recursive: true });

  const files: string[] = [];
  const absent: string[] = [];
  const get = async (file: string, required: boolean) => {
    if (await download(ctx, file, required)) files.push(file);
    else absent.push(file);
  };

  // Small files first: a wrong id or a missing token fails on config.json, before gigabytes.
  for (const f of REQUIRED_FILES) await get(f, true);
  for (const f of OPTIONAL_FILES) await get(f, false);

  // modules.json may place the Pooling config elsewhere than 1_Pooling.
  if (files.includes('modules.json')) {
    for (const path of await poolingPaths(join(dir, 'modules.json'))) {
      const f = `${path}/config.json`;
      if (!files.includes(f) && !absent.includes(f) && safeRelativePath(f)) await get(f, false);
    }
  }

  await get('model.safetensors', false);
  if (absent.includes('model.safetensors')) {
    await get('model.safetensors.index.json', false);
    if (absent.includes('model.safetensors.index.json')) {
      throw new HubError(`${idOrDir}: neither model.safetensors nor model.safetensors.index.json exists at revision '${revision}' (only safetensors weights are supported)`);
    }
    for (const shard of await shardNames(idOrDir, join(dir, 'model.safetensors.index.json'))) await get(shard, true);
  }

  const manifest: Manifest = { id: idOrDir, revision, files, absent };
  // Written last and atomically (fsyncing the folder, which also makes the renames above durable).
  await writeFileAtomic(join(dir, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
  return dir;
}

async function readJsonFile(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, 'utf8'));
}

async function poolingPaths(modulesPath: string): Promise<string[]> {
  try {
    const mods = await readJsonFile(modulesPath);
    if (!Array.isArray(mods)) return [];
    return mods
      .filter((m) => m?.type === 'sentence_transformers.models.Pooling' && typeof m.path === 'string' && m.path)
      .map((m) => String(m.path).replace(/\/+$/, ''));
  } catch {
    return []; // a broken modules.json is reported when settings are resolved, with its name
  }
}

async function shardNames(id: string, indexPath: string): Promise<string[]> {
  let index: unknown;
  try {
    index = await readJsonFile(indexPath);
  } catch (e) {
    throw new HubError(`${id}: model.safetensors.index.json is not valid JSON (${(e as Error).message})`);
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (!map || typeof map !== 'object') throw new HubError(`${id}: model.safetensors.index.json has no weight_map`);
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const s of shards) {
    if (typeof s !== 'string' || !safeRelativePath(s)) throw new HubError(`${id}: model.safetensors.index.json names shard ${JSON.stringify(s)} outside the model folder`);
  }
  return shards as string[];
}
