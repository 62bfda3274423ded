// Whole-model forward parity and whole-model gradients on Dawn's OpenGL ES backend at the
// compatibility feature level (the device of test/compat.test.ts): the same checks, goldens and
// tolerances as test/model.test.ts and test/encoder-grad.test.ts (test/model-parity.ts,
// test/grad-parity.ts), through GL's shader compiler (WGSL -> GLSL) and its limits. The gradient
// checks are what keeps the attention backward's Mesa GLSL fix proven at the model level.

import { glTestGpu, registerGpuChecks } from './helpers.ts';
import { gradParity } from './grad-parity.ts';
import { forwardParity } from './model-parity.ts';

registerGpuChecks([...forwardParity, ...gradParity], glTestGpu, 'compat (OpenGL ES): ');
