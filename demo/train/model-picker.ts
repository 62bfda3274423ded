// The training page's model choice: the bundled models, a Hugging Face Hub id (typed, or from
// `?model=owner/name` so a reopened link trains the same model), or a folder on this computer
// picked with showDirectoryPicker, or with `<input type=file webkitdirectory>` where the browser
// lacks it (Firefox, Safari). Each choice is checked in the worker as soon as it is made, so a
// wrong id or folder is reported before Train is pressed.

import { type ModelSource, ModelSourceError, parseHubInput, pickedFolderName } from './model-source.ts';

export interface BundledModel {
  label: string;
  url: string;
  name: string;
}

export interface ModelChoice {
  source: ModelSource;
  /** What presets go by (the Hub id, the folder's name, the bundled model's name). */
  name: string;
  /** The folder URL of a bundled model, '' otherwise. */
  url: string;
}

export interface PickerElements {
  select: HTMLSelectElement;
  hubBox: HTMLElement;
  hubInput: HTMLInputElement;
  folderBox: HTMLElement;
  folderButton: HTMLButtonElement;
  folderInput: HTMLInputElement;
  status: HTMLElement;
}

type DirectoryPicker = (o?: { id?: string; mode?: 'read' | 'readwrite' }) => Promise<FileSystemDirectoryHandle>;

const HUB = 'hub';
const FOLDER = 'folder';

/**
 * Wires the elements; `check` opens a source (in the worker) and gives its one-line summary.
 * choice() is what Train uses; it throws a one-line error when the choice is incomplete.
 */
export function modelPicker(el: PickerElements, bundled: readonly BundledModel[], check: (s: ModelSource) => Promise<string>): { choice(): ModelChoice } {
  el.select.append(new Option('A Hugging Face Hub id...', HUB), new Option('A folder on this computer...', FOLDER));
  let folder: { source: ModelSource; name: string } | null = null;
  let checked = 0; // only the newest check may write the status

  const show = (text: string, bad = false) => {
    el.status.textContent = text;
    el.status.classList.toggle('error', bad);
  };
  const runCheck = (source: ModelSource) => {
    const n = ++checked;
    show('Checking the model...');
    check(source).then(
      (summary) => n === checked && show(summary),
      (e) => n === checked && show((e as Error).message ?? String(e), true),
    );
  };
  const sync = () => {
    el.hubBox.hidden = el.select.value !== HUB;
    el.folderBox.hidden = el.select.value !== FOLDER;
    show('');
    if (el.select.value === HUB && el.hubInput.value.trim()) hubChanged();
    else if (el.select.value === FOLDER && folder) runCheck(folder.source);
  };
  let lastHub = '';
  const hubChanged = () => {
    lastHub = el.hubInput.value;
    const url = new URL(location.href);
    try {
      const { id, revision } = parseHubInput(el.hubInput.value);
      url.searchParams.set('model', revision === 'main' ? id : `${id}@${revision}`);
      // '/' and '@' need no escaping in a query: keep the id readable in the address bar.
      url.search = url.search.replace(/%2F/gi, '/').replace(/%40/gi, '@');
      history.replaceState(null, '', url);
      runCheck({ kind: 'hub', id, revision });
    } catch (e) {
      show((e as Error).message, true);
    }
  };
  const takeFolder = (source: ModelSource, name: string) => {
    folder = { source, name };
    el.folderButton.textContent = `${name} (pick another...)`;
    runCheck(source);
  };

  el.select.addEventListener('change', sync);
  // (An id checked by Enter is not checked again when the box loses focus.)
  el.hubInput.addEventListener('change', () => el.hubInput.value !== lastHub && hubChanged());
  // Enter checks the id; it must not submit the form (which starts training).
  el.hubInput.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    hubChanged();
  });
  el.folderButton.addEventListener('click', async () => {
    const pick = (globalThis as { showDirectoryPicker?: DirectoryPicker }).showDirectoryPicker;
    if (!pick) {
      el.folderInput.click();
      return;
    }
    try {
      const handle = await pick({ id: 'aqa-train-model', mode: 'read' });
      takeFolder({ kind: 'folder', handle }, handle.name);
    } catch (e) {
      if ((e as DOMException).name !== 'AbortError') show(`Cannot open the folder: ${(e as Error).message}`, true);
    }
  });
  el.folderInput.addEventListener('change', () => {
    const files = [...(el.folderInput.files ?? [])];
    if (files.length) takeFolder({ kind: 'files', files }, pickedFolderName(files));
  });

  // ?model=owner/name: the Hub id a shared or reopened link trains.
  const fromUrl = new URLSearchParams(location.search).get('model');
  if (fromUrl) {
    el.select.value = HUB;
    el.hubInput.value = fromUrl;
  }
  sync();

  return {
    choice() {
      if (el.select.value === HUB) {
        if (!el.hubInput.value.trim()) throw new ModelSourceError('Type a Hub id (owner/name) first.');
        const { id, revision } = parseHubInput(el.hubInput.value);
        return { source: { kind: 'hub', id, revision }, name: id, url: '' };
      }
      if (el.select.value === FOLDER) {
        if (!folder) throw new ModelSourceError('Pick the model folder first.');
        return { ...folder, url: '' };
      }
      const m = bundled.find((x) => x.url === el.select.value);
      if (!m) throw new ModelSourceError(`unknown model choice '${el.select.value}'`);
      const url = new URL(m.url, location.href).href;
      return { source: { kind: 'url', url }, name: m.name, url };
    },
  };
}
