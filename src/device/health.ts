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

/**
 * Turns an error from a GPU call into an HmmError. A rejected mapAsync usually means the
 * device went away, but `device.lost` settles a moment later: give it that moment — a
 * scheduler sleep, so a seeded run's timer is virtual and lands at a seeded point.
 */
export async function asDeviceError(device: GPUDevice, e: unknown, what: string, sched: Scheduler = HOST_SCHEDULER): Promise<HmmError> {
  if (e instanceof HmmError) return e;
  let lost = false;
  void device.lost.then(() => { lost = true; });
  await sched.sleep(50, 'gpu: device-lost grace');
  const msg = e instanceof Error ? e.message : String(e);
  return lost ? err('ENODEV', `${what}: device lost (${msg})`) : err('EIO', `${what}: ${msg}`);
}
