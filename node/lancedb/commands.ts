// What `aqa index --export-lancedb` and `aqa search --lancedb` do, loaded by their actions only.

import type { AqaQuestion } from '../../core/data/aqa.ts';
import { queryText } from '../../core/data/clean.ts';
import type { Retrieved } from '../../core/retrieval/retrieve.ts';
import type { NodeGpuOptions } from '../device.ts';
import { IndexError, type OpenIndex, openIndex } from '../index-store.ts';
import { type AnnKind, annParams, describeAnn } from './ann.ts';
import type { LanceSearchCommandOptions } from './options.ts';
import { checkAnn, searchLance } from './search.ts';
import { exportToLance, lancePids, openLance } from './table.ts';

const seconds = (s: number) => `${s.toFixed(1)} s`;

/** Export the finished index in `dir` (titles from `corpus`) to a LanceDB table. */
export async function exportIndexToLance(dir: string, corpus: string, uri: string, table: string, ann: AnnKind | undefined, log: (l: string) => void): Promise<void> {
  const index = await openIndex(dir);
  const { readTitles } = await import('../result-table.ts');
  const titles = await readTitles(corpus, new Set(index.pids));
  const { dim, count } = index.manifest.identity;
  const params = ann ? annParams(ann, count, dim) : undefined;
  const r = await exportToLance(index, uri, { table, titles, ann: params, log });
  log(`exported ${r.rows} x ${dim} to LanceDB ${uri} (table ${r.table}) in ${seconds(r.writeSeconds)}`);
  if (r.ann && params) log(`ANN index: ${describeAnn(params)}, built in ${seconds(r.annSeconds)}`);
}

export interface LanceQueryRun {
  r: Retrieved;
  /** The index manifest's corpus file (titles for --show). */
  corpus: string;
  rows: number;
}

/**
 * Embed the questions with the table's model (or --model, checked against the table's
 * identity) and search the table. The GPU is opened only for WebGPU query embedding.
 */
export async function lanceQuerySearch(
  o: LanceSearchCommandOptions & { model?: string; maxLength?: number; batchSize: number; precision?: 'f32' | 'f16'; engine?: 'webgpu' | 'onnx'; k: number; gpu: NodeGpuOptions },
  questions: AqaQuestion[],
  questionFile: string,
  log: (l: string) => void,
): Promise<LanceQueryRun> {
  const q = await import('../index-queries.ts');
  const src = await openLance(o.lancedb!, o.lancedbTable);
  try {
    if (o.ann) checkAnn(src);
    // Model checks and gold-pid checks read the manifest and pids like an index directory's.
    const pseudo: OpenIndex = { dir: src.where, manifest: src.manifest, pids: [] };
    const desc = await q.queryModelFor(pseudo, o.model, o.maxLength);
    if (questions.some((x) => x.pids !== undefined)) {
      pseudo.pids = await lancePids(src);
      q.warnMissingPids(pseudo, questions, questionFile);
    }
    const precision = q.queryPrecision(pseudo, o.precision);
    const texts = questions.map((x) => queryText(x));
    const t0 = performance.now();
    let vectors: Float32Array;
    if (o.engine === 'onnx') {
      const model = await (await import('../onnx/engine.ts')).loadOnnxModel(desc.dir, desc.name);
      try {
        vectors = await model.embed(texts, { query: true, batchSize: o.batchSize, maxLength: desc.maxLength });
      } finally {
        model.dispose();
      }
    } else {
      const [device, { loadModel }] = await Promise.all([import('../device.ts'), import('../command-model.ts')]);
      const gpu = await device.createNodeGpu(o.gpu);
      try {
        log(`adapter: ${gpu.name}`);
        const model = await loadModel(gpu, desc.dir, desc.name, precision);
        try {
          vectors = await model.embed(texts, { query: true, batchSize: o.batchSize, maxLength: desc.maxLength });
        } finally {
          model.dispose();
        }
      } finally {
        gpu.destroy();
      }
    }
    if (vectors.length !== questions.length * src.manifest.identity.dim) throw new IndexError(`${src.where}: the query model's dim differs from the table's ${src.manifest.identity.dim}`);
    const t1 = performance.now();
    const r = await searchLance(src, vectors, o.k, { ann: o.ann, nprobes: o.nprobes, ef: o.ef, refineFactor: o.refineFactor });
    const t2 = performance.now();
    log(`${questions.length} queries embedded in ${seconds((t1 - t0) / 1000)}, searched (${o.ann ? 'ANN' : 'exact'}) in ${seconds((t2 - t1) / 1000)}`);
    return { r, corpus: src.manifest.corpus.file, rows: src.manifest.identity.count };
  } finally {
    src.close();
  }
}
