// NumPy .npy (format 1.0) for embedding matrices: numpy.load() and most tools read it directly.
// Layout: magic "\x93NUMPY", version 1.0, u16 LE header length, a Python dict literal padded
// with spaces to a 64-byte boundary and ending in "\n", then the raw little-endian data.

import { readFile } from 'node:fs/promises';
import { f32ToF16Bits } from '../core/model/safetensors.ts';

export type NpyDType = 'f32' | 'f16';

export function npyBytes(data: Float32Array, shape: readonly number[], dtype: NpyDType = 'f32'): Uint8Array[] {
  const descr = dtype === 'f32' ? '<f4' : '<f2';
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const unpadded = 10 + dict.length + 1;
  const header = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const pre = new Uint8Array(10 + header.length);
  pre.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0]);
  new DataView(pre.buffer).setUint16(8, header.length, true);
  pre.set(new TextEncoder().encode(header), 10);
  let body: Uint8Array;
  if (dtype === 'f32') body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  else {
    const h = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) h[i] = f32ToF16Bits(data[i]);
    body = new Uint8Array(h.buffer);
  }
  return [pre, body];
}

/** Read a .npy written by npyBytes (f32 or f16, C order) back as f32. */
export async function readNpy(path: string): Promise<{ shape: number[]; data: Float32Array }> {
  const buf = await readFile(path);
  if (buf.length < 10 || buf[0] !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${path}: not a .npy file`);
  const hlen = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${path}: Fortran-order arrays are not supported`);
  const start = 10 + hlen;
  const n = shape.reduce((a, b) => a * b, 1);
  const body = buf.subarray(start);
  if (descr === '<f4') return { shape, data: new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + n * 4)) };
  if (descr === '<f2') {
    const h = new Uint16Array(body.buffer.slice(body.byteOffset, body.byteOffset + n * 2));
    const { f16BitsToF32 } = await import('../core/model/safetensors.ts');
    return { shape, data: Float32Array.from(h, f16BitsToF32) };
  }
  throw new Error(`${path}: dtype ${descr} is not supported (f4/f2 only)`);
}
