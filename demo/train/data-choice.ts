/// <reference types="vite/client" />
// The training page's AQA data choice: a corpus JSON and a questions JSONL picked as files, or the
// bundled SciFact sample (demo/data/pipeline: 360 papers, 120 training claims with gold pids) in
// one click. Vite emits the sample files next to the build (?url imports), so they are fetched
// from the page's own server. Choosing AQA data drops a picked JSONL file and the other way round.

import corpusUrl from '../data/pipeline/corpus.json?url';
import questionsUrl from '../data/pipeline/qa_train.txt?url';
import type { AqaSource } from './aqa-data.ts';

let chosen: AqaSource | null = null;
const picked: { corpus?: File; questions?: File } = {};

/** The AQA data chosen now, or null. */
export function aqaChoice(): AqaSource | null {
  return chosen;
}

/** Forget the AQA choice (a JSONL file was picked instead). */
export function clearAqaChoice(): void {
  chosen = null;
  picked.corpus = picked.questions = undefined;
  for (const id of ['aqa-corpus', 'aqa-questions']) (document.getElementById(id) as HTMLInputElement).value = '';
}

function say(text: string): void {
  (document.getElementById('data-status') as HTMLElement).textContent = text;
}

/** Wire the two file inputs and the sample button; `onChosen` runs when AQA data replaces other data. */
export function initAqaChoice(onChosen: () => void): void {
  const take = async () => {
    if (!picked.corpus || !picked.questions) {
      say(`AQA data: ${picked.corpus ? 'now pick the questions JSONL' : 'now pick the corpus JSON'}.`);
      return;
    }
    const [corpus, questions] = await Promise.all([picked.corpus.text(), picked.questions.text()]);
    chosen = { corpus, corpusName: picked.corpus.name, questions, questionsName: picked.questions.name };
    onChosen();
    say(`${picked.corpus.name} + ${picked.questions.name}: hard negatives are mined with the model when training starts.`);
  };
  for (const [id, field] of [['aqa-corpus', 'corpus'], ['aqa-questions', 'questions']] as const) {
    const input = document.getElementById(id) as HTMLInputElement;
    input.addEventListener('change', () => {
      picked[field] = input.files?.[0];
      void take();
    });
  }
  (document.getElementById('sample') as HTMLButtonElement).addEventListener('click', async () => {
    say('Fetching the bundled sample...');
    try {
      const get = async (url: string) => {
        const r = await fetch(url);
        if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
        return r.text();
      };
      const [corpus, questions] = await Promise.all([get(corpusUrl), get(questionsUrl)]);
      clearAqaChoice();
      chosen = { corpus, corpusName: 'corpus.json', questions, questionsName: 'qa_train.txt' };
      onChosen();
      say('Bundled SciFact sample: 360 papers and 120 claims with gold papers; hard negatives are mined with the model when training starts.');
    } catch (e) {
      say(`The sample could not be fetched: ${(e as Error).message}`);
    }
  });
}
