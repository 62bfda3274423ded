// Every kernel family's conformance cases, for the Node and Chromium runners.
import { elementwiseCases } from './elementwise.ts';
import type { KernelCase } from './types.ts';

export const allCases: Record<string, KernelCase[]> = {
  elementwise: elementwiseCases,
};
