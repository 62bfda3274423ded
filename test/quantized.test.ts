import { registerCases } from './helpers.ts';
import { quantizedCases } from './cases/quantized.ts';

registerCases('quantized', quantizedCases);
