// Whole-model forward parity and whole-model gradients on Dawn's OpenGL ES backend at the
// compatibility feature level (the device of test/compat.test.ts): the same checks, goldens and
// tolerances as test/model.test.ts and test/encoder-grad.test.ts (test/model-parity.ts,
// test/grad-parity.ts), through GL's shader compiler (WGSL -> GLSL) and its limits. The gradient
// checks keep the attention backward's Mesa GLSL fix (shaders/attention.wgsl, backward_dq's
// per-row dout staging) proven at the model level: with that fix reverted all four fail here
// (gte-dev's word-embedding gradient off by 0.12 where 1.1e-4 is allowed) and pass on Vulkan.
//
// Every check runs except all-MiniLM-L6-v2 at max length 128: MiniLM is nearly all of this
// file's time (GL runs it ~3x slower than Vulkan on llvmpipe), and its 256 pass already covers
// the architecture, mean pooling and every shorter length; the 128 pass adds only the
// tokenizer's truncation, which is host code and runs on Vulkan and in Chromium. The tiny
// fixtures (BERT CLS + mean pooling, GTE, all four gradient checks) cost ~2 s together.
//
// 2-core llvmpipe, CPU time (user + sys; wall time on that shared machine was 2-3x more under
// load averages of 9-14): 1 min 20 s with Mesa's shader cache warm, 2 min 20 s cold
// (MESA_SHADER_CACHE_DISABLE=true), the extra minute building the pipelines through GLSL.
// With both MiniLM passes the file took 2 min 15 s warm.

import { glTestGpu, registerGpuChecks } from './helpers.ts';
import { gradParity } from './grad-parity.ts';
import { bertForward, gteForward, minilmForward } from './model-parity.ts';

registerGpuChecks([gteForward, bertForward, minilmForward([[256, 'embeddings']]), ...gradParity], glTestGpu, 'compat (OpenGL ES): ');
