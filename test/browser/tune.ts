// Chromium entry for test/tune.test.ts: runs the tuner on tiny encoder shapes on the page's
// WebGPU adapter (SwiftShader here) and returns its result, so Node can check that the pick is
// the measured fastest there too. One a@b shape and the attention forward keep it short:
// SwiftShader compiles every pipeline variant on the CPU (seconds for the shared-memory tiles).

import { createBrowserGpu } from '../../browser/device.ts';
import { encoderShapes } from '../../core/tune/shapes.ts';
import { type TuningResult, tune } from '../../core/tune/tuner.ts';

export async function run(): Promise<TuningResult> {
  const gpu = await createBrowserGpu();
  try {
    const all = encoderShapes({ arch: 'bert', hiddenSize: 32, intermediateSize: 64, numHeads: 4, headDim: 8 }, 2, 13);
    const shapes = { matmul: all.matmul.filter((s) => s.op === 'a@b').slice(0, 1), attention: all.attention };
    return await tune(gpu, shapes, { reps: 2, targetMs: 5, maxIters: 4, dtypes: ['f32'], kinds: ['matmul', 'attention'] });
  } finally {
    gpu.destroy();
  }
}
