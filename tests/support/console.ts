/** console.log/error and process.stdout.write (progress, tables), captured for a CLI test; restored by vi.restoreAllMocks(). */
import { vi } from 'vitest';

export function captureConsole(): { log: string[]; err: string[]; out: string[] } {
  const log: string[] = [];
  const err: string[] = [];
  const out: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { log.push(a.join(' ')); });
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out.push(String(chunk)); return true; });
  return { log, err, out };
}
