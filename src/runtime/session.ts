import { createInferenceSession, ort } from './ort.js';
import type { Graph } from '../ir/graph.js';
import { encodeModel } from '../ir/onnx.js';
import { guardPadBeforeMaxPool } from './ort-guards.js';
import type { DType, TypedArray } from '../ir/tensor.js';
import { QuadranetError } from '../util/errors.js';

/** Session options exposed to users; everything else keeps onnxruntime's defaults. */
export interface SessionOptions {
  /** Threads inside one operator (intra-op); default 1 for reproducible timings. */
  threads?: number;
  /** onnxruntime graph optimisation level; default 'all'. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Write an onnxruntime profile (JSON) with this file prefix. */
  profilePrefix?: string;
  /**
   * onnxruntime's memory-pattern planner (one block per run, sized from the first run); default
   * on, except for train steps, where it measured 1.7× the peak RSS at no gain in speed.
   */
  memoryPattern?: boolean;
  /**
   * Execution provider: 'cpu' (default) or 'webgpu' (the onnxruntime-node Linux build bundles it;
   * it needs a GPU and its Vulkan driver, libvulkan.so.1).
   */
  ep?: ExecutionProvider;
  /**
   * Whether onnxruntime's intra-op threads spin while waiting for work (default true,
   * onnxruntime's default: lowest latency for a session that runs alone). `measureLatency` turns
   * it off: its sessions alternate run by run, and one session's spinning threads took the cores
   * from the next (bench/PROFILE.md).
   */
  spinning?: boolean;
}

/** Where onnxruntime runs a session's kernels. */
export type ExecutionProvider = 'cpu' | 'webgpu';

/** The execution providers the CLI offers (`--ep`). */
export const EXECUTION_PROVIDERS: readonly ExecutionProvider[] = ['cpu', 'webgpu'];

/** An execution provider that cannot run here: one line, naming the flag that avoids it. */
export class ExecutionProviderError extends QuadranetError {
  constructor(message: string) {
    super(message);
    this.name = 'ExecutionProviderError';
  }
}

/** A host tensor: a typed array plus its shape and dtype. */
export interface HostTensor {
  /** Element type. */
  dtype: DType;
  /** Shape. */
  dims: readonly number[];
  /** Values in row-major order. */
  data: TypedArray;
}

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int64: 'int64',
  int32: 'int32',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
};

/** Wraps host data as an onnxruntime tensor without copying. */
export function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(ORT_TYPE[t.dtype], t.data as never, t.dims as number[]);
}

/** An onnxruntime session over an IR graph. */
export class Session {
  private constructor(
    /** The underlying onnxruntime session. */
    readonly ort: ort.InferenceSession,
    /** The graph this session runs. */
    readonly graph: Graph,
  ) {}

  /** Compiles `graph` into an onnxruntime session (onnxruntime-node; onnxruntime-web in the browser). */
  static async create(graph: Graph, opts: SessionOptions = {}): Promise<Session> {
    const bytes = encodeModel(guardPadBeforeMaxPool(graph));
    let s: ort.InferenceSession;
    try {
      s = await createInferenceSession(bytes, {
        // Only when asked: each build (Node, browser) has its own default provider.
        ...(opts.ep ? { executionProviders: [opts.ep] } : {}),
        intraOpNumThreads: opts.threads ?? 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: opts.optimization ?? 'all',
        executionMode: 'sequential',
        enableMemPattern: opts.memoryPattern ?? true,
        enableProfiling: opts.profilePrefix !== undefined,
        profileFilePrefix: opts.profilePrefix,
        ...(opts.spinning === false
          ? { extra: { session: { intra_op: { allow_spinning: '0' } } } }
          : {}),
      });
    } catch (e) {
      if (!opts.ep || opts.ep === 'cpu') throw e;
      const msg = e instanceof Error ? e.message : String(e);
      const why = /WebGPU adapter/.test(msg)
        ? 'no WebGPU adapter found'
        : msg.split('\n')[0]!.slice(0, 160);
      throw new ExecutionProviderError(
        `the ${opts.ep} execution provider cannot run here (${why}); it needs a GPU with its Vulkan driver (libvulkan.so.1); use --ep cpu`,
      );
    }
    return new Session(s, graph);
  }

  /** Runs the graph; returns the requested outputs (all by default) as host tensors. */
  async run(
    feeds: Record<string, HostTensor>,
    outputs: readonly string[] = this.ort.outputNames,
  ): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrt(v);
    const res = await this.ort.run(ortFeeds, outputs as string[]);
    const out: Record<string, HostTensor> = {};
    for (const [k, v] of Object.entries(res)) {
      out[k] = { dtype: v.type as DType, dims: [...v.dims], data: v.data as TypedArray };
    }
    return out;
  }

  /** Ends profiling (if enabled) and returns the profile file name. */
  endProfiling(): void {
    this.ort.endProfiling();
  }

  /** Frees the onnxruntime session; it cannot be run afterwards. */
  async release(): Promise<void> {
    await this.ort.release();
  }
}
