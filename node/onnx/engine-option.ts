// `--engine webgpu|onnx` for the commands that embed. Kept apart from engine.ts so registering the
// commands loads neither the model code nor onnxruntime.

import { Option } from 'commander';

export type Engine = 'webgpu' | 'onnx';

export function engineOption(): Option {
  return new Option('--engine <engine>', 'webgpu: the WebGPU shaders; onnx: <model>/onnx/model.onnx (aqa export --format onnx) on onnxruntime-node\'s CPU provider, faster where the only adapter is a CPU driver')
    .choices(['webgpu', 'onnx'])
    .default('webgpu');
}
