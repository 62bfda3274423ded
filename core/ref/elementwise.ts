// CPU references for shaders/elementwise.wgsl (float64 accumulation where it matters), each
// backward below its forward. Inputs may be f32 or f64 arrays (the gradient checker
// evaluates forwards in f64).

export function addRef(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

// ---------------------------------------------------------------- erf in float64
//
// JavaScript has no Math.erf, so the reference is computed here to ~1e-15 (checked against
// mpmath values in test/cases/elementwise.ts). Two classic expansions, each used where it
// converges fast and without cancellation:
//   |x| < 3:  erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))
//             (all terms positive, so no cancellation; ~70 terms at x = 3)
//   |x| >= 3: erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
//             (continued fraction, modified Lentz; ~40 terms at x = 3, fewer beyond)

const TWO_OVER_SQRT_PI = 1.1283791670955126;
const ONE_OVER_SQRT_PI = 0.5641895835477563;

function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 0; n < 500; n++) {
    term *= (2 * x2) / (2 * n + 3);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/** erfc(x) for x >= 3 by the Laplace continued fraction. */
function erfcFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? 1 / tiny : 1 / d;
    c = x + a / c;
    if (Math.abs(c) < tiny) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return (Math.exp(-x * x) * ONE_OVER_SQRT_PI) / f;
}

/** Error function in float64 (|error| ~1e-15). */
export function erfRef(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const t = Math.abs(x);
  if (t < 3) return Math.sign(x) * erfSeries(t);
  if (t > 27) return Math.sign(x); // erfc(27) < 1e-318
  return Math.sign(x) * (1 - erfcFraction(t));
}

/** Complementary error function in float64, accurate in the right tail (no 1 - erf cancellation). */
export function erfcRef(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x >= 3) return x > 27 ? 0 : erfcFraction(x);
  if (x <= -3) return 2 - erfcRef(-x);
  return 1 - Math.sign(x) * erfSeries(Math.abs(x));
}

/** Exact GELU, x * Phi(x) = 0.5 x erfc(-x / sqrt 2) (erfc form: accurate in the left tail too). */
export function geluScalarRef(x: number): number {
  return 0.5 * x * erfcRef(-x * Math.SQRT1_2);
}

/** The tanh approximation, only to show the tests can tell it from the exact GELU (max gap 4.7e-4 at x = -2.70). */
export function geluTanhScalarRef(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

export function erfArrayRef(x: Float32Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = erfRef(x[i]);
  return out;
}

export function geluRef(x: ArrayLike<number>): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = geluScalarRef(x[i]);
  return out;
}

const ONE_OVER_SQRT_2PI = 0.3989422804014327;

/** gelu'(x) = Phi(x) + x phi(x), with Phi(x) = erfc(-x / sqrt 2) / 2 (tail-accurate). */
export function geluGradScalarRef(x: number): number {
  return 0.5 * erfcRef(-x * Math.SQRT1_2) + x * ONE_OVER_SQRT_2PI * Math.exp(-0.5 * x * x);
}

/** dx = dout * gelu'(x). */
export function geluBackwardRef(dout: ArrayLike<number>, x: ArrayLike<number>): Float64Array {
  const dx = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) dx[i] = dout[i] * geluGradScalarRef(x[i]);
  return dx;
}

/** GEGLU: out[r, c] = gelu(gate[r, c]) * up[r, c], with upGate[r] = [up (I) | gate (I)]. */
export function gluRef(upGate: ArrayLike<number>, cols: number): Float64Array {
  const rows = upGate.length / (2 * cols);
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const up = upGate[r * 2 * cols + c];
      const gate = upGate[r * 2 * cols + cols + c];
      out[r * cols + c] = geluScalarRef(gate) * up;
    }
  }
  return out;
}

/** dUpGate[r] = [dout * gelu(gate) | dout * up * gelu'(gate)] for dout [rows, I], upGate [rows, 2I]. */
export function gluBackwardRef(dout: ArrayLike<number>, upGate: ArrayLike<number>, cols: number): Float64Array {
  const rows = upGate.length / (2 * cols);
  const d = new Float64Array(rows * 2 * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const up = upGate[r * 2 * cols + c];
      const gate = upGate[r * 2 * cols + cols + c];
      const g = dout[r * cols + c];
      d[r * 2 * cols + c] = g * geluScalarRef(gate);
      d[r * 2 * cols + cols + c] = g * up * geluGradScalarRef(gate);
    }
  }
  return d;
}
