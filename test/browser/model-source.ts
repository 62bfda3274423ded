// Chromium entry for test/browser-model-source.test.ts: the training page's model choice
// (demo/train/model-picker.ts over demo/train/model-source.ts) with real DOM elements. The test
// answers https://huggingface.co/** from the tiny-bert fixture through page.route and fills the
// `<input webkitdirectory>` fallback with setInputFiles. run() chooses the bundled URL, a Hub id,
// the picked folder's files and a directory handle (the same files copied into OPFS: the kind of
// handle showDirectoryPicker gives), sends each source through structuredClone as it travels to
// the worker, opens it, embeds the same texts with each, and tries the ids the page must refuse.

import { createBrowserGpu } from '../../browser/device.ts';
import { loadEmbeddingModel } from '../../core/retrieval/embed.ts';
import { type ModelChoice, modelPicker } from '../../demo/train/model-picker.ts';
import { type ModelSource, openModelSource } from '../../demo/train/model-source.ts';
import { type EncodedArray, encodeArray } from './encoding.ts';

export interface SourceArg {
  /** URL of the bundled folder, as the runner serves it. */
  bundled: string;
  hubId: string;
  /** Hub ids the page must refuse. */
  refused: string[];
  texts: string[];
  maxLength: number;
}

export interface SourceResult {
  kind: ModelSource['kind'];
  name: string;
  identity: string;
  summary: string;
  /** What the picker's status line said after its check. */
  status: string;
  embeddings: EncodedArray;
}

export interface SourceReport {
  results: SourceResult[];
  /** Hub id -> the message the page shows. */
  refusals: Record<string, string>;
  /** The page's address after the Hub id was typed (?model=...). */
  hubUrl: string;
  ms: number;
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, id: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.id = id;
  document.body.append(e);
  return e;
}

export async function run(arg: SourceArg): Promise<SourceReport> {
  const t0 = performance.now();
  const select = element('select', 'model');
  const folderInput = element('input', 'folder-input');
  folderInput.type = 'file';
  folderInput.webkitdirectory = true;
  const status = element('p', 'model-status');
  const el = { select, hubBox: element('p', 'model-hub'), hubInput: element('input', 'hub-id'), folderBox: element('p', 'model-folder'), folderButton: element('button', 'pick-folder'), folderInput, status };
  const bundled = [{ label: 'tiny-bert', url: arg.bundled, name: 'tiny-bert' }];
  select.append(new Option('tiny-bert', arg.bundled));

  // The picker's check runs in the worker on the page: here in this page, after the same
  // structured clone postMessage makes.
  let checked: (() => void) | null = null;
  const check = async (s: ModelSource) => {
    try {
      return (await openModelSource(structuredClone(s))).summary;
    } finally {
      setTimeout(() => checked?.(), 0); // after the picker has written its status
    }
  };
  const picker = modelPicker(el, bundled, check);
  const settle = (change: () => void) =>
    new Promise<void>((ok) => {
      checked = ok;
      change();
    });

  const gpu = await createBrowserGpu();
  const results: SourceResult[] = [];
  const use = async (c: ModelChoice) => {
    const m = await openModelSource(structuredClone(c.source));
    const model = await loadEmbeddingModel(gpu, m.files, c.name);
    const emb = await model.embed(arg.texts, { maxLength: arg.maxLength });
    model.dispose();
    results.push({ kind: c.source.kind, name: m.name, identity: m.identity, summary: m.summary, status: status.textContent ?? '', embeddings: encodeArray(emb) });
  };

  await use(picker.choice()); // the bundled model, selected first
  select.value = 'hub';
  select.dispatchEvent(new Event('change'));
  await settle(() => {
    el.hubInput.value = arg.hubId;
    el.hubInput.dispatchEvent(new Event('change'));
  });
  const hubUrl = location.href;
  await use(picker.choice());

  select.value = 'folder';
  select.dispatchEvent(new Event('change'));
  // The test's setInputFiles fills the fallback input once the page says so; the picker checks what it got.
  await new Promise<void>((ok) => {
    checked = ok;
    document.body.dataset.pickFolder = 'ready';
  });
  const picked = picker.choice();
  await use(picked);

  // A FileSystemDirectoryHandle with the same files (what showDirectoryPicker returns).
  const files = (picked.source as { files: File[] }).files;
  const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('tiny-bert', { create: true });
  for (const f of files) {
    const w = await (await dir.getFileHandle(f.name, { create: true })).createWritable();
    await w.write(f);
    await w.close();
  }
  await use({ source: { kind: 'folder', handle: dir }, name: 'tiny-bert', url: '' });

  const refusals: Record<string, string> = {};
  select.value = 'hub';
  for (const id of arg.refused) {
    await settle(() => {
      el.hubInput.value = id;
      el.hubInput.dispatchEvent(new Event('change'));
    });
    refusals[id] = status.textContent ?? '';
  }
  gpu.destroy();
  return { results, refusals, hubUrl, ms: performance.now() - t0 };
}
