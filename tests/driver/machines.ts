/**
 * The driver tests' machines: created through `machines.push`, destroyed after each test
 * (vitest's afterEach, registered by the file that imports this).
 */
import { afterEach } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, type Machine } from '../../src/index.js';

export const RW = PROT_READ | PROT_WRITE;
export const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/** Machines this test file made; each is destroyed once its test ends. */
export function trackMachines(): Machine[] {
  const machines: Machine[] = [];
  afterEach(async () => {
    for (const m of machines.splice(0)) await m.destroy();
  });
  return machines;
}
