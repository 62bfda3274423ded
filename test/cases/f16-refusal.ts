// The check an f16 case returns on an adapter without 'shader-f16' (browser-safe: no node:*).

import type { Gpu } from '../../core/gpu/device.ts';
import type { Check } from './types.ts';

/** Without 'shader-f16' the f16 launch must throw the pipeline's one-line refusal. */
export function refusalCheck(gpu: Gpu, launch: () => void): Check[] {
  let message = '';
  try {
    launch();
  } catch (e) {
    message = (e as Error).message;
  }
  const refused = /needs shader-f16/.test(message) && !message.includes('\n');
  return [{ name: `refused without shader-f16 on ${gpu.adapter.description || 'this adapter'} (${message || 'no error'})`, actual: [refused ? 1 : 0], expected: [1], tol: { atol: 0 } }];
}
