// The uniform struct an entry point reads, parsed from its preprocessed WGSL, and the check that
// a launcher's uniform values match it field by field.
//
// dispatch() packs uniforms 4 bytes per field in the order given, so a launcher and a shader
// that disagree on the order of `struct Params` compute garbage without any error. Launchers
// name their values ({ M, N, K, ... }); the first pipeline of each (kernel, entry, defines)
// parses its struct once, and every dispatch compares names, count and scalar types against it.
//
// Only what our shaders use is understood: `var<uniform>` at @binding(0) whose type is a struct
// of u32, i32 and f32 fields. The entry's own variable is found by following the functions it
// calls, since one file may declare several at binding 0 for different entries.

import type { Uniform } from './device.ts';

export type ScalarType = 'u32' | 'i32' | 'f32';

export interface UniformField {
  name: string;
  type: ScalarType;
}

/** The struct an entry point reads at binding 0: its name and fields in declaration order. */
export interface UniformLayout {
  struct: string;
  fields: UniformField[];
}

/**
 * The uniform struct `entry` reads at @binding(0) in preprocessed WGSL `code`, or null when it
 * reads none. `where` (e.g. "matmul.wgsl") prefixes errors.
 */
export function uniformLayout(code: string, entry: string, where: string): UniformLayout | null {
  const src = stripComments(code);
  const vars = new Map<string, string>(); // variable -> struct type, binding 0 only
  for (const m of src.matchAll(/((?:@\w+\s*\([^)]*\)\s*)*)var\s*<\s*uniform\s*>\s*([A-Za-z_]\w*)\s*:\s*([A-Za-z_]\w*)/g)) {
    if (/@binding\s*\(\s*0\s*\)/.test(m[1])) vars.set(m[2], m[3]);
  }
  if (vars.size === 0) return null;
  const used = [...reachableIdentifiers(src, entry, where)].filter((id) => vars.has(id));
  if (used.length === 0) return null;
  if (used.length > 1) throw new Error(`${where}: entry ${entry} reads several uniforms at binding 0 (${used.join(', ')})`);
  const struct = vars.get(used[0])!;
  const body = new RegExp(`\\bstruct\\s+${struct}\\s*\\{([^}]*)\\}`).exec(src);
  if (!body) throw new Error(`${where}: struct ${struct} (the type of uniform ${used[0]}) is not declared`);
  return { struct, fields: structFields(body[1], struct, where) };
}

/**
 * Why `values` do not match the struct, or null when they do: named values must have the
 * struct's names in its order, a positional list its field count; either way each value's
 * scalar type (a number is a u32, f32() and i32() wrap the others) must be the field's.
 * Runs on every dispatch, so the message is built only on a mismatch.
 */
export function uniformMismatch(layout: UniformLayout, values: Record<string, Uniform> | readonly Uniform[]): string | null {
  const { fields } = layout;
  if (Array.isArray(values)) {
    const list = values as readonly Uniform[];
    if (list.length !== fields.length) return mismatch(layout, values, `${fields.length} fields, ${list.length} values`);
    for (let i = 0; i < list.length; i++) {
      const t = typeOf(list[i]);
      if (t !== fields[i].type) return mismatch(layout, values, `field '${fields[i].name}' is ${fields[i].type} but value ${i} is ${t}`);
    }
    return null;
  }
  let i = 0;
  for (const name in values) {
    const f = fields[i++];
    if (!f) return mismatch(layout, values, `'${name}' has no field`);
    if (f.name !== name) return mismatch(layout, values, `field ${i - 1} is '${f.name}' but the launcher passes '${name}' there`);
    const t = typeOf((values as Record<string, Uniform>)[name]);
    if (t !== f.type) return mismatch(layout, values, `field '${f.name}' is ${f.type} but '${name}' is ${t}`);
  }
  return i < fields.length ? mismatch(layout, values, `field '${fields[i].name}' is not passed`) : null;
}

function mismatch(layout: UniformLayout, values: Record<string, Uniform> | readonly Uniform[], why: string): string {
  const given = Array.isArray(values)
    ? `(${values.length} values)`
    : `{ ${Object.entries(values as Record<string, Uniform>).map(([k, v]) => `${k}: ${typeOf(v)}`).join(', ')} }`;
  const expected = `struct ${layout.struct} { ${layout.fields.map((f) => `${f.name}: ${f.type}`).join(', ')} }`;
  return `uniforms ${given} do not match the shader's ${expected}: ${why}`;
}

function typeOf(v: Uniform): ScalarType {
  return typeof v === 'number' ? 'u32' : 'f32' in v ? 'f32' : 'i32';
}

function stripComments(code: string): string {
  return code.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, '');
}

/** Fields of a struct body `a: u32, b: f32, ...` (attributes such as @align dropped). */
function structFields(body: string, struct: string, where: string): UniformField[] {
  const fields: UniformField[] = [];
  for (const piece of splitTopLevel(body)) {
    const text = piece.replace(/@\w+\s*(\([^)]*\))?/g, '').trim();
    if (!text) continue;
    const m = /^([A-Za-z_]\w*)\s*:\s*(.+)$/s.exec(text);
    if (!m) throw new Error(`${where}: cannot read field '${text}' of struct ${struct}`);
    const type = m[2].trim();
    if (type !== 'u32' && type !== 'i32' && type !== 'f32') {
      throw new Error(`${where}: field ${m[1]} of uniform struct ${struct} is ${type}; dispatch() packs 4-byte u32, i32 and f32 fields only`);
    }
    fields.push({ name: m[1], type });
  }
  return fields;
}

/** Split on commas outside <...> (array<f32, 4> is one type). */
function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '<') depth++;
    else if (c === '>') depth--;
    else if (c === ',' && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

/** Identifiers in the bodies of `entry` and of every function it calls, directly or not. */
function reachableIdentifiers(src: string, entry: string, where: string): Set<string> {
  const bodies = new Map<string, string>();
  for (const m of src.matchAll(/\bfn\s+([A-Za-z_]\w*)\s*\(/g)) {
    const open = src.indexOf('{', m.index);
    if (open < 0) continue;
    let depth = 0;
    let end = open;
    for (; end < src.length; end++) {
      if (src[end] === '{') depth++;
      else if (src[end] === '}' && --depth === 0) break;
    }
    bodies.set(m[1], src.slice(open, end + 1));
  }
  if (!bodies.has(entry)) throw new Error(`${where}: no function named ${entry}`);
  const seen = new Set<string>();
  const fns = [entry];
  const visited = new Set(fns);
  while (fns.length) {
    for (const id of bodies.get(fns.pop()!)!.match(/[A-Za-z_]\w*/g) ?? []) {
      seen.add(id);
      if (bodies.has(id) && !visited.has(id)) {
        visited.add(id);
        fns.push(id);
      }
    }
  }
  return seen;
}
