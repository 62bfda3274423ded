// A paper of one's own library, as demo/library/parse.ts reads it from a file. Apart from the
// parser so that the worker can build and store libraries without loading the BibTeX parser,
// which it imports only when a file is dropped.

export interface LibraryPaper {
  pid: string;
  title: string;
  abstract: string;
  doi?: string;
  url?: string;
}

/** The papers as an AQA corpus JSON text (what the CLI's aqa index --corpus reads), doi / url kept. */
export function toCorpusJson(papers: readonly LibraryPaper[]): string {
  const o: Record<string, { title: string; abstract: string; doi?: string; url?: string }> = {};
  for (const p of papers) o[p.pid] = { title: p.title, abstract: p.abstract, ...(p.doi ? { doi: p.doi } : {}), ...(p.url ? { url: p.url } : {}) };
  return JSON.stringify(o);
}
