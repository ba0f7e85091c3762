/**
 * The machines' leak check, with no vitest in it: the fixtures (machine.ts, mirror.ts) end
 * every machine with checkMachineTeardown, and code that also runs outside vitest (the
 * concurrency search's harness, which scripts/soak.ts runs) takes its machine from
 * standaloneMachine and ends it with the same check.
 */
import { createMachine, type Machine, type SystemOptions } from '../../src/index.js';
import { checkFrameAccounting } from '../../src/mm/accounting.js';

/**
 * Teardown of a machine: consistent now, and empty once destroyed (every frame but the zero
 * page free, nothing in swap). A machine the test destroyed itself is checked the same way
 * (destroy() again is a no-op).
 */
export async function checkMachineTeardown(m: Machine): Promise<void> {
  checkFrameAccounting(m);
  await m.destroy();
  const r = checkFrameAccounting(m);
  const problems = [
    r.usedFrames !== 1 ? `${r.usedFrames} frames in use (only the zero page should be)` : '',
    r.swapSlots !== 0 ? `${r.swapSlots} swap slots in use` : '',
    m.ram.freePages !== m.ram.npages - 1 ? `${m.ram.npages - 1 - m.ram.freePages} frames not free` : '',
  ].filter((x) => x !== '');
  if (problems.length > 0) throw new Error(`after destroy: ${problems.join('; ')}`);
}

/**
 * A machine outside any test's fixtures, for code that runs outside vitest too: the caller
 * owns its life and ends it with `teardown()`, which is checkMachineTeardown (it throws what
 * it finds: a leaked frame or swap slot, an accounting error).
 */
export async function standaloneMachine(opts: SystemOptions): Promise<{ machine: Machine; teardown: () => Promise<void> }> {
  const machine = await createMachine(opts);
  return { machine, teardown: () => checkMachineTeardown(machine) };
}
