// The LanceDB options of `aqa index` and `aqa search`. Imported at start-up to register them,
// so it imports nothing but commander and the cheap option parsers.

import { type Command, Option } from 'commander';
import { positiveInt } from '../cli-options.ts';

export interface LanceIndexOptions {
  exportLancedb?: string;
  lancedbTable: string;
  lancedbAnn?: 'ivf-pq' | 'hnsw';
}

export interface LanceSearchCommandOptions {
  lancedb?: string;
  lancedbTable: string;
  ann: boolean;
  nprobes?: number;
  ef?: number;
  refineFactor?: number;
}

const TABLE = 'passages';

export function addLanceIndexOptions(cmd: Command): Command {
  return cmd
    .option('--export-lancedb <uri>', 'also write the index to a LanceDB database (pid, title, vector; the model identity in the schema metadata)')
    .option('--lancedb-table <name>', 'with --export-lancedb: the table to write (replaced if it exists)', TABLE)
    .addOption(new Option('--lancedb-ann <kind>', 'with --export-lancedb: build an ANN index (skipped below 1,024 rows)').choices(['ivf-pq', 'hnsw']));
}

export function addLanceSearchOptions(cmd: Command): Command {
  return cmd
    .option('--lancedb <uri>', 'search a LanceDB table written by aqa index --export-lancedb instead of --index')
    .option('--lancedb-table <name>', 'with --lancedb: the table', TABLE)
    .option('--ann', "with --lancedb: use the table's ANN index (without it: exact search of every row)")
    .option('--nprobes <n>', 'with --ann on IVF-PQ: partitions probed per query (LanceDB default 20)', positiveInt)
    .option('--ef <n>', 'with --ann on HNSW: candidate list size (default 1.5 x k)', positiveInt)
    .option('--refine-factor <n>', 'with --ann: re-rank n x k candidates with the full vectors', positiveInt);
}
