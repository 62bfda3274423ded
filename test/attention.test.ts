import { attentionCases } from './cases/attention.ts';
import { registerCases } from './helpers.ts';

registerCases('attention', attentionCases);
