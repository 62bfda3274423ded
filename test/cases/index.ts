// Every kernel family's conformance cases, for the Node and Chromium runners.
import { attentionCases } from './attention.ts';
import { dropoutCases } from './dropout.ts';
import { elementwiseCases } from './elementwise.ts';
import { embeddingCases } from './embedding.ts';
import { layernormCases } from './layernorm.ts';
import { lossCases } from './loss.ts';
import { matmulCases } from './matmul.ts';
import { optimCases } from './optim.ts';
import { poolingCases } from './pooling.ts';
import { quantizedCases } from './quantized.ts';
import { ropeCases } from './rope.ts';
import { topkCases } from './topk.ts';
import type { KernelCase } from './types.ts';

export const allCases: Record<string, KernelCase[]> = {
  attention: attentionCases,
  dropout: dropoutCases,
  elementwise: elementwiseCases,
  embedding: embeddingCases,
  layernorm: layernormCases,
  loss: lossCases,
  matmul: matmulCases,
  optim: optimCases,
  pooling: poolingCases,
  quantized: quantizedCases,
  rope: ropeCases,
  topk: topkCases,
};
