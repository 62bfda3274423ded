// One reader for the fields of parsed JSON files (model config.json, index manifests, pipeline
// configs): every error is one line naming the file and the field's path (`models[1].train.seed`),
// and a field's rule is worded the same way wherever it is read.

import { NUMBER_RULES, type NumberRule } from './rules.ts';

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A value as an error shows it: strings quoted ('gelu_new'), containers by kind, the rest as is. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** A value's kind, for "expected a string, got <kind>": 'missing', 'null', 'an array', 'a number', ... */
export function describeKind(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'missing';
  if (Array.isArray(v)) return 'an array';
  const t = typeof v;
  return t === 'object' ? 'an object' : `a ${t}`;
}

/**
 * `text` parsed as JSON that must be an object. Messages read `where: what` and are wrapped by
 * `error`, so each file format keeps its own error class; `expected` names what the object holds.
 */
export function parseJsonObject(text: string, where: string, error: (message: string) => Error, expected = 'a JSON object'): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw error(`${where}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(v)) throw error(`${where}: expected ${expected}, got ${describeKind(v)}`);
  return v;
}

/** A Hub id: `owner/name`, letters, digits, `-`, `_`, `.` (no leading dot, no `..`). */
export function isHubId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/.test(s) && !s.includes('..');
}

/** `a.b`, `a[0]`: a field's path below `path`. */
export function fieldPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

/** A rule by name (core/util/rules.ts) or written out for one reader. */
export type Rule = NumberRule | { test: (x: number) => boolean; says: string };

function ruleOf(r: Rule): { test: (x: number) => boolean; says: string } {
  return typeof r === 'string' ? NUMBER_RULES[r] : r;
}

export class FieldError extends Error {
  override name = 'FieldError';
}

export interface FieldsOptions {
  /**
   * How a field and its problem are joined: 'colon' gives `file: models[1].seed: must be an
   * integer >= 0` (our own files), 'is' gives `file: num_hidden_layers is '12', expected an
   * integer >= 1` (Hugging Face config.json, whose fields are read out of a flat object).
   */
  wording?: 'colon' | 'is';
  /** The error to throw (default: a FieldError with fieldMessage's text). */
  error?: (file: string, field: string | null, what: string) => Error;
}

/** The one-line message for a problem `what` with `field` (a full path; null = the file itself). */
export function fieldMessage(file: string, field: string | null, what: string, wording: FieldsOptions['wording'] = 'colon'): string {
  const sep = wording === 'is' ? ' ' : ': ';
  return `${file}: ${field ? `${field}${sep}` : ''}${what}`.replace(/\s*[\r\n]+\s*/g, ' ');
}

/** Field-by-field reader of one JSON object at `path` in `file`. */
export class Fields {
  constructor(
    readonly file: string,
    readonly obj: Record<string, unknown>,
    readonly path = '',
    readonly opts: FieldsOptions = {},
  ) {}

  /** Check a value is an object (with only `known` fields, when given) and read it. */
  static of(file: string, v: unknown, path = '', opts: FieldsOptions = {}, known?: readonly string[]): Fields {
    const f: Fields = new Fields(file, {}, '', opts);
    if (!isObject(v)) f.fail(path || null, f.opts.wording === 'is' ? `is ${describeValue(v)}, expected a JSON object` : `must be an object, got ${JSON.stringify(v) ?? 'nothing'}`);
    return new Fields(file, v, path, opts).known(known);
  }

  /** The full path of a field of this object. */
  at(key: string | number): string {
    return fieldPath(this.path, key);
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined;
  }

  get(key: string): unknown {
    return this.obj[key];
  }

  /** Throw the one-line error for the field at `field` (a full path; null = the file itself). */
  fail(field: string | null, what: string): never {
    throw this.opts.error ? this.opts.error(this.file, field, what) : new FieldError(fieldMessage(this.file, field, what, this.opts.wording));
  }

  /** Throw for this object's field `key`. */
  failAt(key: string | number, what: string): never {
    return this.fail(this.at(key), what);
  }

  private missing(key: string, says: string): never {
    return this.failAt(key, this.opts.wording === 'is' ? `is missing (expected ${says})` : `missing (must be ${says})`);
  }

  private bad(key: string, v: unknown, says: string): never {
    return this.failAt(key, this.opts.wording === 'is' ? `is ${describeValue(v)}, expected ${says}` : `must be ${says}`);
  }

  /** Refuse fields not in `known` (typos would otherwise be ignored silently). */
  known(known?: readonly string[]): this {
    if (known) for (const k of Object.keys(this.obj)) if (!known.includes(k)) this.failAt(k, `unknown field (known: ${known.join(', ')})`);
    return this;
  }

  /** A finite number following `rule`; absent (or null, with nullIsAbsent) = `dflt`, required when that is undefined. */
  number(key: string, rule: Rule, dflt?: number, o: { nullIsAbsent?: boolean } = {}): number {
    const v = this.obj[key];
    const r = ruleOf(rule);
    if (v === undefined || (v === null && o.nullIsAbsent)) {
      if (dflt !== undefined) return dflt;
      return this.missing(key, r.says);
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || !r.test(v)) this.bad(key, v, r.says);
    return v as number;
  }

  /** A string (non-empty with nonEmpty); absent = `dflt`, required when that is undefined. */
  string(key: string, dflt?: string, o: { nonEmpty?: boolean } = {}): string {
    const v = this.obj[key];
    const says = o.nonEmpty ? 'a non-empty string' : 'a string';
    if (v === undefined) {
      if (dflt !== undefined) return dflt;
      return this.missing(key, 'a string');
    }
    if (typeof v !== 'string' || (o.nonEmpty && v === '')) this.bad(key, v, says);
    return v as string;
  }

  /** true or false; absent (or null, with nullIsAbsent) = `dflt`, required when that is undefined. */
  bool(key: string, dflt?: boolean, o: { nullIsAbsent?: boolean } = {}): boolean {
    const v = this.obj[key];
    if (v === undefined || (v === null && o.nullIsAbsent)) {
      if (dflt !== undefined) return dflt;
      return this.missing(key, 'true or false');
    }
    if (typeof v !== 'boolean') this.bad(key, v, 'true or false');
    return v as boolean;
  }

  /** One of `choices`; absent = `dflt`, required when that is undefined. */
  oneOf<T extends string>(key: string, choices: readonly T[], dflt?: T): T {
    const v = this.obj[key];
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'string' || !choices.includes(v as T)) this.bad(key, v, `one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`);
    return v as T;
  }

  /** The object at `key`, as a reader for its own fields (only `known` ones, when given). */
  object(key: string, known?: readonly string[]): Fields {
    const v = this.obj[key];
    if (v === undefined) this.failAt(key, 'missing');
    if (!isObject(v)) this.bad(key, v, 'an object');
    return new Fields(this.file, v, this.at(key), this.opts).known(known);
  }

  /** The array at `key`. */
  array(key: string): unknown[] {
    const v = this.obj[key];
    if (v === undefined) this.failAt(key, 'missing');
    if (!Array.isArray(v)) this.bad(key, v, 'an array');
    return v as unknown[];
  }

  /** The objects of the array at `key`, each as a reader. */
  objects(key: string): Fields[] {
    return this.array(key).map((e, i) => {
      if (!isObject(e)) this.failAt(`${key}[${i}]`, this.opts.wording === 'is' ? `is ${describeValue(e)}, expected an object` : 'must be an object');
      return new Fields(this.file, e, `${this.at(key)}[${i}]`, this.opts);
    });
  }
}
