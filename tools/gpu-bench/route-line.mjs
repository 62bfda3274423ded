// One summary line for one adapter route of run.sh, from what `aqa info` printed on it:
//
//   node route-line.mjs <n> <name> <stdout file> <stderr file> <exit status> <time limit s>
//
// prints `route <n> <name>: adapter <name> (<feature level>, shader-f16 yes|no)` or
// `route <n> <name>: no adapter (<one-line reason>)`, and exits 0 for a hardware adapter,
// 3 for a software one (llvmpipe, lavapipe, SwiftShader: the same test as core/gpu/adapter.ts's
// isCpuAdapter), 1 for none. Plain JavaScript: it runs with the packed Node and no loader.
import { readFileSync } from 'node:fs';

const [n, name, outFile, errFile, rcText, limitText] = process.argv.slice(2);
const read = (f) => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return '';
  }
};
const stdout = read(outFile);
const stderr = read(errFile);
const rc = Number(rcText);
const squeeze = (s) => s.replace(/\s+/g, ' ').trim();
const clip = (s, max = 220) => (s.length > max ? `${s.slice(0, max - 3)}...` : s);

/** `aqa info` prints, per adapter, a header line then "  features: a, b, ..." and its limits. */
function adapters(text) {
  const lines = text.split('\n');
  const out = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    const m = /^ {2}features: ?(.*)$/.exec(lines[i + 1]);
    if (m && !lines[i].startsWith(' ')) out.push({ header: squeeze(lines[i]), features: m[1].split(',').map((f) => f.trim()).filter(Boolean) });
  }
  return out;
}

/** Why there is no adapter, in one line: the loader's first error, Dawn's, or aqa's. */
function reason() {
  if (rc === 124 || rc === 137) return `no answer within ${limitText} s (killed)`;
  const parts = [];
  const vk = /vkCreateInstance failed with (VK_[A-Z_]+)/.exec(stderr);
  if (vk) parts.push(`vkCreateInstance: ${vk[1]}`);
  const loader = stderr.split('\n').find((l) => /^ERROR(?: \| [A-Z]+)*:/.test(l.trim()));
  // Library paths shortened to their file names: the line says which library, $OUT/route<n>.err where.
  if (loader) parts.push(`loader: ${squeeze(loader.replace(/^\s*ERROR(?: \| [A-Z]+)*:/, '')).replace(/\/\S*\/(lib[^\s/]+)/g, '$1')}`);
  if (!parts.length) {
    const aqa = stderr.split('\n').reverse().find((l) => l.startsWith('aqa: ') || /error/i.test(l));
    // aqa's no-adapter message is several sentences of advice: its first says what happened.
    if (aqa) parts.push(squeeze(aqa.replace(/^aqa: /, '')).replace(/^(No WebGPU adapter found\.).*/, '$1'));
  }
  if (!parts.length) parts.push(rc ? `aqa info exited with ${rc}` : 'aqa info named no adapter');
  return clip(parts.join('; '));
}

const selected = /^selected: (.*)$/m.exec(stdout)?.[1]?.trim();
if (rc !== 0 || !selected) {
  console.log(`route ${n} ${name}: no adapter (${reason()})`);
  process.exit(1);
}
const found = adapters(stdout);
// The selected adapter's block: its name is vendor / architecture / device / description.
const parts = selected.split(' / ');
const block = found.find((a) => parts.every((p) => a.header.includes(squeeze(p)))) ?? found[0];
const features = new Set(block?.features ?? []);
const level = features.has('core-features-and-limits') ? 'core' : 'compatibility';
const software = /llvmpipe|lavapipe|swiftshader|software|warp|basic render|\bcpu\b/i.test(`${selected} ${block?.header ?? ''}`);
console.log(`route ${n} ${name}: adapter ${selected} (${level}, shader-f16 ${features.has('shader-f16') ? 'yes' : 'no'})`);
process.exit(software ? 3 : 0);
