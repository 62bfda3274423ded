// Every kernel family's conformance cases, for the Node and Chromium runners.
import { elementwiseCases } from './elementwise.ts';
import { embeddingCases } from './embedding.ts';
import { layernormCases } from './layernorm.ts';
import { matmulCases } from './matmul.ts';
import { poolingCases } from './pooling.ts';
import type { KernelCase } from './types.ts';

export const allCases: Record<string, KernelCase[]> = {
  elementwise: elementwiseCases,
  embedding: embeddingCases,
  layernorm: layernormCases,
  matmul: matmulCases,
  pooling: poolingCases,
};
