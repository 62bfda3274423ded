// `aqa index --shard i/n`: build part i of n of an index, so n machines embed one corpus each
// doing a deterministic slice (whole shard files by position; core/retrieval/index-format.ts).
// One rule for the part number: `--shard i/n` is explicit; `--shard auto/n` takes i from
// JOB_COMPLETION_INDEX, which a Kubernetes Indexed Job sets in each pod (0 to completions - 1).
// Imported on every start (commander registration), so it imports nothing.

export const JOB_INDEX_ENV = 'JOB_COMPLETION_INDEX';

export interface ShardSpec {
  /** The part number, or 'auto' for JOB_COMPLETION_INDEX. */
  index: number | 'auto';
  of: number;
}

export interface ShardPart {
  index: number;
  of: number;
}

const DIGITS = /^\d+$/;

/** Commander parser for `--shard i/n` or `--shard auto/n`; bad values are one line naming the flag. */
export function parseShardSpec(v: string): ShardSpec {
  const m = /^([^/]+)\/([^/]+)$/.exec(v.trim());
  if (!m) throw new Error(`--shard: expected i/n (part i of n, 0 <= i < n) or auto/n (i from ${JOB_INDEX_ENV}), got '${v}'`);
  const [, i, n] = m;
  if (!DIGITS.test(n) || Number(n) < 1 || !Number.isSafeInteger(Number(n))) throw new Error(`--shard ${v}: n must be a positive integer (the number of parts)`);
  const of = Number(n);
  if (i === 'auto') return { index: 'auto', of };
  if (!DIGITS.test(i)) throw new Error(`--shard ${v}: i must be an integer from 0 to ${of - 1}, or auto`);
  const index = Number(i);
  if (index >= of) throw new Error(`--shard ${v}: i must be below n (parts are numbered 0 to ${of - 1})`);
  return { index, of };
}

/**
 * The part to build. `auto` reads JOB_COMPLETION_INDEX (a missing or out-of-range value is an
 * error); an explicit i wins over the variable, with a warning when they differ, since every pod
 * of an Indexed Job running one hard-coded i would all build the same part.
 */
export function resolveShard(spec: ShardSpec, env: Record<string, string | undefined>, warn: (line: string) => void): ShardPart {
  const job = env[JOB_INDEX_ENV];
  const name = `--shard ${spec.index}/${spec.of}`;
  if (spec.index !== 'auto') {
    if (job !== undefined && job.trim() !== String(spec.index)) warn(`${name}: ${JOB_INDEX_ENV}=${job} is ignored (use --shard auto/${spec.of} to take the part number from it)`);
    return { index: spec.index, of: spec.of };
  }
  if (job === undefined || job.trim() === '') throw new Error(`${name}: ${JOB_INDEX_ENV} is not set (a Kubernetes Indexed Job sets it); give the part number, --shard i/${spec.of}`);
  const t = job.trim();
  if (!DIGITS.test(t) || Number(t) >= spec.of) throw new Error(`${name}: ${JOB_INDEX_ENV}=${job} is not a part number from 0 to ${spec.of - 1} (completions must equal n)`);
  return { index: Number(t), of: spec.of };
}
