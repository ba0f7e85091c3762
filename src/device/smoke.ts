/**
 * The smoke kernel (shaders/smoke.wgsl) and its CPU reference, shared by tests and the demo.
 */
import smokeWgsl from '../../shaders/smoke.wgsl?raw';
import { readBuffer, withErrorScopes } from './gpu.js';

/** What unwritten output elements hold, so a missed element can never pass by accident. */
export const POISON = 0xdeadbeef;

/** CPU reference: out[i] = (in[i] * 3 + i) ^ key, u32 arithmetic, for i < count. */
export function smokeReference(input: Uint32Array, key: number, count = input.length): Uint32Array {
  const out = new Uint32Array(input.length).fill(POISON);
  for (let i = 0; i < count; i++) out[i] = ((Math.imul(input[i], 3) + i) ^ key) >>> 0;
  return out;
}

export interface SmokeOptions {
  /** Elements the kernel should write (default: all); the rest must stay POISON. */
  count?: number;
  workgroupSize?: number;
}

/** Runs the kernel inside error scopes and returns the whole output buffer. */
export async function runSmokeKernel(
  device: GPUDevice, input: Uint32Array<ArrayBuffer>, key: number, opts: SmokeOptions = {},
): Promise<Uint32Array> {
  const count = opts.count ?? input.length;
  const wg = opts.workgroupSize ?? 64;
  const bytes = Math.max(input.byteLength, 4);
  return withErrorScopes(device, async () => {
    const params = device.createBuffer({ label: 'smoke params', size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const src = device.createBuffer({ label: 'smoke src', size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    const dst = device.createBuffer({ label: 'smoke dst', size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
    try {
      new Uint32Array(dst.getMappedRange()).fill(POISON);
      dst.unmap();
      device.queue.writeBuffer(params, 0, new Uint32Array([count, key >>> 0, 0, 0]));
      device.queue.writeBuffer(src, 0, input);

      const module = device.createShaderModule({ label: 'smoke.wgsl', code: smokeWgsl });
      const pipeline = await device.createComputePipelineAsync({
        label: 'smoke',
        layout: 'auto',
        compute: { module, entryPoint: 'main', constants: { WORKGROUP_SIZE: wg } },
      });
      const bind = device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: params } },
          { binding: 1, resource: { buffer: src } },
          { binding: 2, resource: { buffer: dst } },
        ],
      });
      const enc = device.createCommandEncoder({ label: 'smoke' });
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(Math.ceil(count / wg));
      pass.end();
      device.queue.submit([enc.finish()]);
      return new Uint32Array(await readBuffer(device, dst, 0, input.byteLength));
    } finally {
      params.destroy(); src.destroy(); dst.destroy();
    }
  });
}
