// An aqa index as a LanceDB table, and exact or ANN search of it. Loaded by `aqa index
// --export-lancedb` and `aqa search --lancedb` only (dynamic imports), so no other command pays
// for the native module.
//
// TABLE (default name "passages"): one row per indexed passage in index row order,
//   pid     utf8
//   title   utf8 (from the corpus; empty when the corpus lacks the pid)
//   vector  fixed_size_list<float32>[dim]: the index's vectors, f16 shards widened exactly
// and in the schema metadata
//   aqa.lancedb   "1" (this layout's version)
//   aqa.index     the index's manifest.json (model identity, settings, shard hashes), so a
//                 search checks its query model against the one the passages were embedded with.

import { createRequire } from 'node:module';
import type { Connection, Table } from '@lancedb/lancedb';
import type { FixedSizeList, Float32, Schema } from 'apache-arrow';
import { type IndexManifest, parseIndexManifest } from '../../core/retrieval/index-format.ts';
import { IndexError, type OpenIndex, shardVectors } from '../index-store.ts';
import { type AnnParams, annIndex, MIN_ANN_ROWS } from './ann.ts';

export const DEFAULT_TABLE = 'passages';
export const LAYOUT_KEY = 'aqa.lancedb';
export const LAYOUT_VERSION = '1';
export const MANIFEST_KEY = 'aqa.index';
/** Rows per Arrow batch handed to LanceDB (10,000 x 1024 f32 is 41 MB). */
const BATCH_ROWS = 10_000;

type Lance = typeof import('@lancedb/lancedb');
type Arrow = typeof import('apache-arrow');

let loaded: { lance: Lance; arrow: Arrow } | null = null;
/**
 * The LanceDB module and the same copy of apache-arrow it uses: LanceDB is CommonJS, and Arrow
 * objects from the ESM build of apache-arrow fail its instanceof checks, so Arrow is required too.
 */
export async function lanceModules(): Promise<{ lance: Lance; arrow: Arrow }> {
  if (loaded) return loaded;
  // Its Rust log prints deprecation notices on stderr at warn level; errors still show.
  process.env.LANCEDB_LOG ??= 'error';
  const req = createRequire(import.meta.url);
  loaded = { lance: req('@lancedb/lancedb') as Lance, arrow: req('apache-arrow') as Arrow };
  return loaded;
}

async function connect(uri: string): Promise<Connection> {
  const { lance } = await lanceModules();
  try {
    return await lance.connect(uri);
  } catch (e) {
    throw new IndexError(`${uri}: cannot open as a LanceDB database (${oneLine(e)})`);
  }
}

function oneLine(e: unknown): string {
  return String((e as Error).message ?? e).split('\n')[0].trim();
}

export interface ExportLanceOptions {
  table?: string;
  /** Title per pid; absent ones are written empty. */
  titles?: ReadonlyMap<string, string>;
  /** Build this ANN index after the rows (skipped below MIN_ANN_ROWS rows). */
  ann?: AnnParams;
  log?: (line: string) => void;
}

export interface ExportLanceResult {
  table: string;
  rows: number;
  /** Seconds writing rows, and building the ANN index (0 without one). */
  writeSeconds: number;
  annSeconds: number;
  /** Whether an ANN index was built. */
  ann: boolean;
}

/** Write `index` to the LanceDB database at `uri` as a table (replacing a table of that name). */
export async function exportToLance(index: OpenIndex, uri: string, o: ExportLanceOptions = {}): Promise<ExportLanceResult> {
  const { arrow } = await lanceModules();
  const name = o.table ?? DEFAULT_TABLE;
  const { dim, count } = index.manifest.identity;
  const metadata = new Map([
    [LAYOUT_KEY, LAYOUT_VERSION],
    [MANIFEST_KEY, JSON.stringify(index.manifest)],
  ]);
  const vectorType = new arrow.FixedSizeList(dim, new arrow.Field('item', new arrow.Float32(), true)) as FixedSizeList<Float32>;
  const schema = new arrow.Schema(
    [new arrow.Field('pid', new arrow.Utf8(), false), new arrow.Field('title', new arrow.Utf8(), false), new arrow.Field('vector', vectorType, false)],
    metadata,
  ) as Schema;
  const batch = (start: number, rows: Float32Array) => {
    const n = rows.length / dim;
    const pids = index.pids.slice(start, start + n);
    const pid = arrow.vectorFromArray(pids, new arrow.Utf8());
    const title = arrow.vectorFromArray(
      pids.map((p) => o.titles?.get(p) ?? ''),
      new arrow.Utf8(),
    );
    const vector = arrow.makeData({ type: vectorType, length: n, nullCount: 0, child: arrow.makeData({ type: new arrow.Float32(), length: n * dim, data: rows }) });
    const data = arrow.makeData({ type: new arrow.Struct(schema.fields), length: n, nullCount: 0, children: [pid.data[0], title.data[0], vector] });
    return new arrow.RecordBatch(schema, data);
  };

  const db = await connect(uri);
  const t0 = performance.now();
  let table: Table | null = null;
  let at = 0;
  try {
    // Dropped rather than overwritten: an overwrite keeps the old version's files on disk.
    if ((await db.tableNames()).includes(name)) await db.dropTable(name);
    for await (const shard of shardVectors(index)) {
      for (let r = 0; r < shard.length / dim; r += BATCH_ROWS) {
        const rows = shard.subarray(r * dim, Math.min(shard.length, (r + BATCH_ROWS) * dim));
        const data = new arrow.Table([batch(at, rows)]);
        if (!table) table = await db.createTable(name, data, { mode: 'overwrite' });
        else await table.add(data);
        at += rows.length / dim;
      }
    }
  } catch (e) {
    if (e instanceof IndexError) throw e;
    throw new IndexError(`${uri}: cannot write table ${name} (${oneLine(e)})`);
  }
  if (!table || at !== count) throw new IndexError(`${index.dir}: ${at} rows read, the manifest says ${count}`);
  const writeSeconds = (performance.now() - t0) / 1000;
  let annSeconds = 0;
  let built = false;
  if (o.ann && count < MIN_ANN_ROWS) {
    o.log?.(`${name}: ${count} rows, fewer than ${MIN_ANN_ROWS}: no ANN index built (a flat scan is as fast)`);
  } else if (o.ann && o.ann.metric === 'cosine' && !index.manifest.identity.normalize) {
    throw new IndexError(`${index.dir}: the model does not normalize its vectors, and LanceDB's HNSW index ranks by cosine, not dot product; use --lancedb-ann ivf-pq`);
  } else if (o.ann) {
    const { lance } = await lanceModules();
    const t1 = performance.now();
    await table.createIndex('vector', { config: annIndex(lance, o.ann), replace: true });
    annSeconds = (performance.now() - t1) / 1000;
    built = true;
  }
  table.close();
  db.close();
  return { table: name, rows: count, writeSeconds, annSeconds, ann: built };
}

export interface LanceSource {
  uri: string;
  table: Table;
  db: Connection;
  manifest: IndexManifest;
  /** Where, for messages: `uri (table name)`. */
  where: string;
  /** The metric of the table's ANN index on its vector column; null without one. */
  annMetric: 'dot' | 'cosine' | null;
  close(): void;
}

/** Open an exported table and its index manifest (refusing tables aqa did not write). */
export async function openLance(uri: string, name = DEFAULT_TABLE): Promise<LanceSource> {
  const db = await connect(uri);
  const where = `${uri} (table ${name})`;
  let table: Table;
  try {
    const names = await db.tableNames();
    if (!names.includes(name)) {
      throw new IndexError(`${uri}: no table ${JSON.stringify(name)} (${names.length ? `tables: ${names.join(', ')}` : 'no tables'}); write one with aqa index --export-lancedb ${uri}`);
    }
    table = await db.openTable(name);
  } catch (e) {
    db.close();
    if (e instanceof IndexError) throw e;
    throw new IndexError(`${where}: cannot open (${oneLine(e)})`);
  }
  const fail = (msg: string): never => {
    table.close();
    db.close();
    throw new IndexError(`${where}: ${msg}`);
  };
  const meta = (await table.schema()).metadata;
  if (meta.get(LAYOUT_KEY) !== LAYOUT_VERSION) fail(`not a table written by aqa index --export-lancedb (schema metadata ${LAYOUT_KEY} is ${JSON.stringify(meta.get(LAYOUT_KEY) ?? null)}, expected "${LAYOUT_VERSION}")`);
  let manifest: IndexManifest | null = null;
  try {
    manifest = parseIndexManifest(meta.get(MANIFEST_KEY) ?? '', `schema metadata ${MANIFEST_KEY}`);
  } catch (e) {
    fail(oneLine(e));
  }
  const rows = await table.countRows();
  if (rows !== manifest!.identity.count) fail(`${rows} rows, its index manifest says ${manifest!.identity.count}`);
  const ann = (await table.listIndices()).find((i) => i.columns.includes('vector'));
  const metric = String((ann?.indexDetails as { metric_type?: string } | undefined)?.metric_type ?? '').toLowerCase();
  const annMetric = !ann ? null : metric === 'cosine' || (!metric && /hnsw/i.test(ann.indexType)) ? 'cosine' : 'dot';
  return {
    uri,
    table,
    db,
    manifest: manifest!,
    where,
    annMetric,
    close: () => {
      table.close();
      db.close();
    },
  };
}

/** Every pid in row order (for gold-pid checks). */
export async function lancePids(src: LanceSource): Promise<string[]> {
  const out: string[] = [];
  for await (const b of src.table.query().select(['pid'])) for (const p of b.getChild('pid')!) out.push(p as string);
  return out;
}
