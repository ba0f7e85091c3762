/**
 * errno-style device health for the mirror layer: a lost or destroyed GPU turns every call
 * into HmmError('ENODEV') (like a GPU that fell off the bus: nvidia's RC / "GPU has fallen
 * off the bus", nouveau's channel kill), a failed transfer on a live device into 'EIO'.
 */
import { err, HmmError } from '../errors.js';
import { RealScheduler, type Scheduler } from '../sched/scheduler.js';
import { assertDeviceAlive } from './gpu.js';

/** The scheduler of device objects made without one (tests, benches): plain awaits. */
export const HOST_SCHEDULER: Scheduler = new RealScheduler();

/** Throws HmmError('ENODEV') when the device has been lost or destroyed. */
export function ensureAlive(device: GPUDevice, what: string): void {
  try {
    assertDeviceAlive(device);
  } catch (e) {
    throw err('ENODEV', `${what}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** How long a rejected GPU call waits for `device.lost` before calling the failure EIO. */
const LOST_GRACE_MS = 2000;

/**
 * Turns an error from a GPU call into an HmmError. A rejected mapAsync usually means the
 * device went away, but `device.lost` settles a moment later — how much later depends on
 * the browser's load, so a fixed sleep misreads a loss as EIO on a busy machine. Wait for
 * the loss itself, bounded by a real timer, as one outside completion (`sched.wait`): it
 * always settles, so a seeded run collects it at a seeded point whatever the GPU's speed.
 */
export async function asDeviceError(device: GPUDevice, e: unknown, what: string, sched: Scheduler = HOST_SCHEDULER): Promise<HmmError> {
  if (e instanceof HmmError) return e;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const lost = await sched.wait(Promise.race([
    device.lost.then(() => true),
    new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), LOST_GRACE_MS); }),
  ]), 'gpu: device-lost grace');
  clearTimeout(timer);
  const msg = e instanceof Error ? e.message : String(e);
  return lost ? err('ENODEV', `${what}: device lost (${msg})`) : err('EIO', `${what}: ${msg}`);
}
