/**
 * The choice between the two fault services: dmirror's range fault (range-service.ts,
 * lib/test_hmm.c's dmirror_fault: the default) and UVM's batched service (batch-service.ts:
 * batching, coalescing windows, replay policies, the other retry protocols, a migration
 * policy), from the options (service-options.ts).
 */
import { err } from '../errors.js';
import { BatchFaultService } from './batch-service.js';
import type { FaultService } from './fault-service.js';
import { RangeFaultService } from './range-service.js';
import type { MirrorTarget } from './retry.js';
import { DEFAULT_SERVICER, type ServicerOptions } from './service-options.js';

/** The fault service `opts` describe: the range service when rangePages > 0, else the batch service. */
export function createFaultService(target: MirrorTarget, opts: Partial<ServicerOptions>): FaultService {
  const o = { ...DEFAULT_SERVICER, ...opts };
  if (o.rangePages > 0 && o.policy !== undefined) throw err('EINVAL', 'a migration policy services batches, not dmirror_fault ranges');
  return o.rangePages > 0 ? new RangeFaultService(target, o) : new BatchFaultService(target, o);
}
