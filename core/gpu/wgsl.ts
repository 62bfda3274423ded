// A tiny WGSL preprocessor: one .wgsl file per kernel family, variants chosen by defines.
//
//   #if NAME / #if !NAME / #elif NAME / #else / #endif   keep or drop lines (nestable)
//   {{NAME}}                                             replaced by the define's value
//   #float NAME                                          the storage type of a kernel's floats:
//       `enable f16; alias NAME = f16;` when the define F16 is on, else `alias NAME = f32;`
//       (one line, so compiler messages keep their line numbers; place it with the directives)
//
// Only what changes the shader text belongs in defines (tile shapes, workgroup size, flags);
// sizes go in uniforms so one pipeline serves every shape.

export type Defines = Record<string, number | boolean | string>;

export function preprocess(source: string, defines: Defines = {}, name = 'shader'): string {
  const out: string[] = [];
  // Each frame: is this branch active, has any branch of this #if been taken, was the parent active.
  const stack: { active: boolean; taken: boolean; parent: boolean }[] = [];
  const active = () => (stack.length === 0 ? true : stack[stack.length - 1].active);
  const truthy = (expr: string, line: number): boolean => {
    const m = /^(!?)\s*([A-Za-z_][A-Za-z0-9_]*)$/.exec(expr.trim());
    if (!m) throw new Error(`${name}:${line}: bad #if expression '${expr}' (use NAME or !NAME)`);
    const v = defines[m[2]];
    const t = v !== undefined && v !== false && v !== 0 && v !== '';
    return m[1] ? !t : t;
  };
  const lines = source.split('\n');
  lines.forEach((text, i) => {
    const line = i + 1;
    const d = /^\s*#(if|elif|else|endif)\b(.*)$/.exec(text);
    if (d) {
      const [, kw, rest] = d;
      if (kw === 'if') {
        const parent = active();
        const t = parent && truthy(rest, line);
        stack.push({ active: t, taken: t, parent });
      } else {
        const top = stack[stack.length - 1];
        if (!top) throw new Error(`${name}:${line}: #${kw} without #if`);
        if (kw === 'elif') {
          const t = top.parent && !top.taken && truthy(rest, line);
          top.active = t;
          top.taken ||= t;
        } else if (kw === 'else') {
          top.active = top.parent && !top.taken;
          top.taken = true;
        } else stack.pop();
      }
      out.push(''); // keep line numbers stable for compiler messages
      return;
    }
    if (!active()) {
      out.push('');
      return;
    }
    const f = /^\s*#float\s+([A-Za-z_][A-Za-z0-9_]*)\s*$/.exec(text);
    if (f) {
      out.push(truthy('F16', line) ? `enable f16; alias ${f[1]} = f16;` : `alias ${f[1]} = f32;`);
      return;
    }
    out.push(
      text.replace(/\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}/g, (_, k: string) => {
        if (!(k in defines)) throw new Error(`${name}:${line}: define '${k}' is not set`);
        return String(defines[k]);
      }),
    );
  });
  if (stack.length) throw new Error(`${name}: unterminated #if`);
  return out.join('\n');
}

/** Stable cache key: `name[entry,k=v,...]` with defines sorted, e.g. `layernorm[backward,WG=128]`. */
export function pipelineKey(kernel: string, entry: string, defines: Defines = {}): string {
  const parts = Object.keys(defines)
    .sort()
    .map((k) => `${k}=${defines[k]}`);
  return `${kernel}[${[entry, ...parts].join(',')}]`;
}
