// `aqa export --format onnx`: a model folder (a Hub model, or an `aqa train` output folder) as
// <out>/onnx/model.onnx (core/model/onnx/) beside copies of its config, tokenizer and
// sentence-transformers files, the layout transformers.js and onnxruntime loaders expect. Like the safetensors export, the
// folder is written under a temporary name and renamed into place when complete.

export interface OnnxExportOptions {
  model: string;
  out: string;
}

// Not copied: weights (the graph holds them), and what `aqa train` writes beside its final model
// (checkpoints with optimizer state, the training log and state).
const SKIPPED = /\.safetensors$|^model\.safetensors\.index\.json$|^checkpoint-\d+$|^train_log\.jsonl$|^trainer_state\.json$|^onnx$/;

export async function runOnnxExport(o: OnnxExportOptions): Promise<{ bytes: number; params: number; pooling: string; normalize: boolean }> {
  const [{ mkdir, readdir, readFile }, { join }, { resolveModelDir }, files, { exportOnnx }] = await Promise.all([
    import('node:fs/promises'),
    import('node:path'),
    import('../command-model.ts'),
    import('../files.ts'),
    import('../../core/model/onnx/export.ts'),
  ]);
  const existing = await readdir(o.out).catch(() => null);
  if (existing && existing.length) throw new Error(`--out ${o.out}: folder exists and is not empty; choose a new folder`);
  const dir = await resolveModelDir(o.model);
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  const r = await exportOnnx(files.localModelFiles(dir), o.model, { name: pkg.name, version: pkg.version });

  await files.writeModelFolderAtomic(dir, o.out, SKIPPED, async (tmp) => {
    await mkdir(join(tmp, 'onnx'), { recursive: true });
    await files.writeFileAtomic(join(tmp, 'onnx', 'model.onnx'), r.bytes);
  });
  return { bytes: r.bytes.length, params: r.params, pooling: r.pooling, normalize: r.normalize };
}
