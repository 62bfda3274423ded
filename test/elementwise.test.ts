import { elementwiseCases } from './cases/elementwise.ts';
import { registerCases } from './helpers.ts';

registerCases('elementwise', elementwiseCases);
