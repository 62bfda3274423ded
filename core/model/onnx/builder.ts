// A small ONNX graph builder: nodes with generated names, initializers from typed arrays, and
// shared constants. It knows nothing about encoders (encoder-graph.ts does).

import { AttributeType, type AttributeMsg, DataType, type GraphMsg, type NodeMsg, type TensorMsg, type ValueInfoMsg } from './proto.ts';

type Attr = number | number[] | string | { float: number };

/** Raw little-endian bytes of a typed array (what TensorProto.raw_data holds). */
function bytesOf(a: Float32Array | BigInt64Array): Uint8Array {
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  if (!le) throw new Error('ONNX export needs a little-endian host');
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export class GraphBuilder {
  readonly nodes: NodeMsg[] = [];
  readonly initializers: TensorMsg[] = [];
  private readonly constants = new Map<string, string>();
  private count = 0;

  /** Add an op; returns its output names (one per `outputs`, default one). */
  op(type: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs = 1): string[] {
    const id = `${type}_${this.count++}`;
    const out = Array.from({ length: outputs }, (_, i) => (outputs === 1 ? id : `${id}_${i}`));
    this.nodes.push({ name: id, op_type: type, input: inputs, output: out, attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)) });
    return out;
  }

  /** One-output op. */
  op1(type: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.op(type, inputs, attrs)[0];
  }

  /** Rename the output of the last node (graph outputs need fixed names). */
  nameLast(name: string): string {
    this.nodes[this.nodes.length - 1].output[0] = name;
    return name;
  }

  /** An f32 initializer. */
  weight(name: string, data: Float32Array, dims: number[]): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new Error(`ONNX initializer ${name}: ${data.length} values for shape [${dims.join(', ')}]`);
    this.initializers.push({ name, dims, data_type: DataType.FLOAT, raw_data: bytesOf(data) });
    return name;
  }

  /** A shared int64 constant (shapes, axes, indices). */
  int64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = `const_i64_${this.constants.size}`;
      this.initializers.push({ name, dims, data_type: DataType.INT64, raw_data: bytesOf(BigInt64Array.from(values.map(BigInt))) });
      this.constants.set(key, name);
    }
    return name;
  }

  /** A shared f32 scalar constant. */
  scalar(value: number): string {
    const key = `f32:${value}`;
    let name = this.constants.get(key);
    if (!name) {
      name = `const_f32_${this.constants.size}`;
      this.initializers.push({ name, dims: [], data_type: DataType.FLOAT, raw_data: bytesOf(new Float32Array([value])) });
      this.constants.set(key, name);
    }
    return name;
  }

  graph(name: string, input: ValueInfoMsg[], output: ValueInfoMsg[], doc?: string): GraphMsg {
    return { name, node: this.nodes, initializer: this.initializers, input, output, ...(doc ? { doc_string: doc } : {}) };
  }
}

function attribute(name: string, v: Attr): AttributeMsg {
  if (typeof v === 'number') return { name, type: AttributeType.INT, i: v };
  if (Array.isArray(v)) return { name, type: AttributeType.INTS, ints: v };
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  return { name, type: AttributeType.FLOAT, f: v.float };
}

/** A tensor graph input or output with named (dynamic) or fixed dimensions. */
export function valueInfo(name: string, elemType: number, dims: (string | number)[]): ValueInfoMsg {
  return { name, type: { tensor_type: { elem_type: elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) } } } };
}
