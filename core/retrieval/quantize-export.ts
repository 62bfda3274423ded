// A browser export's compressed form on the GPU (the demo worker; index-format.ts describes the
// files): the codes are fetched whole, the vector files only row by row for rescoring, through
// the ranged reads of ModelFiles (HTTP Range requests in the browser). The page downloads
// 1/32 (binary) or 1/4 (int8) of the f32 vectors up front.

import type { Gpu } from '../gpu/device.ts';
import type { ModelFiles } from '../model/source.ts';
import type { ExportManifest } from './index-format.ts';
import { bytesToScales, bytesToWords } from './quantize.ts';
import { fileRowReader, QuantizedIndex } from './quantize-search.ts';

export interface ExportQuantizedOptions {
  /** Called with the byte count of each file fetched. */
  onBytes?: (n: number) => void;
  /** Candidates per result to rescore (default: the export's). */
  rescore?: number;
}

export async function uploadExportQuantized(gpu: Gpu, m: ExportManifest, folder: ModelFiles, o: ExportQuantizedOptions = {}): Promise<QuantizedIndex> {
  const q = m.quantized;
  if (!q) throw new Error(`${folder.name}: the export has no compressed form`);
  const fetchAll = async (file: string, bytes?: number) => {
    const src = await folder.file(file);
    if (!src) throw new Error(`${folder.name}/${file}: not found (HTTP 404)`);
    if (bytes !== undefined && src.size !== bytes) throw new Error(`${src.name}: ${src.size} bytes, the manifest says ${bytes} (rebuild the export)`);
    const b = await src.read(0, src.size);
    o.onBytes?.(b.byteLength);
    return b;
  };
  const scales = q.scales ? bytesToScales(await fetchAll(q.scales.file), m.dim, `${folder.name}/${q.scales.file}`) : undefined;
  async function* pieces(): AsyncGenerator<Uint32Array> {
    for (const f of q!.files) yield bytesToWords(await fetchAll(f.file, f.bytes));
  }
  const files = m.files.map((f) => ({
    rows: f.rows,
    read: async (start: number, end: number) => {
      const src = await folder.file(f.file);
      if (!src) throw new Error(`${folder.name}/${f.file}: not found (HTTP 404)`);
      return src.read(start, end);
    },
  }));
  return QuantizedIndex.upload(gpu, q.kind, pieces(), m.dim, m.count, { scales, rescore: o.rescore ?? q.rescore, readRows: fileRowReader(files, m.dim, m.dtype) });
}
