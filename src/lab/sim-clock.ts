/**
 * The lab's simulated time: the cost model's clock (src/policy/cost.ts), never the wall
 * clock. With a migration policy it is the policy path's own virtual clock (PolicyPath.now,
 * the one the policy runs report as sim_time_ns). Without one, the same model charges what
 * the run did: a kernel launch per round of the command (replays included) and a fault
 * group's service per batch (faultGroupNs; faultNs and, for uvm-smart-serial, farFaultNs per
 * unique fault: without a policy each unique fault is a page not on the device).
 * Integer ns, so a run's simulated time is a function of what it did, not of the machine.
 */
import { DEFAULT_COST, type CostModel } from '../policy/cost.js';

export class SimClock {
  readonly cost: CostModel;
  readonly #policy: { readonly now: number } | null;
  #ns = 0;

  constructor(policy: { readonly now: number } | null, cost: CostModel = DEFAULT_COST) {
    this.#policy = policy;
    this.cost = cost;
  }

  /** A round of the command is about to run (a launch or a replay). */
  round(): void {
    if (this.#policy === null) this.#ns += this.cost.launchNs;
  }

  /** A batch of `unique` faults was serviced. */
  batch(unique: number): void {
    if (this.#policy === null) this.#ns += this.cost.faultGroupNs + (this.cost.faultNs + this.cost.farFaultNs) * unique;
  }

  get ns(): number {
    return this.#policy === null ? this.#ns : this.#policy.now;
  }
}
