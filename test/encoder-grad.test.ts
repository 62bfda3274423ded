// Whole-model gradients against PyTorch autograd (official GTE v1.5 code, Hugging Face
// BertModel) on the default test device; the checks and their tolerances are in
// test/grad-parity.ts, which test/compat-model.test.ts also runs on OpenGL ES.

import { gradParity } from './grad-parity.ts';
import { registerGpuChecks, testGpu } from './helpers.ts';

registerGpuChecks(gradParity, testGpu);
