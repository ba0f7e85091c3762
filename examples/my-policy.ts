/**
 * A user migration policy, loaded with
 *
 *   npm run experiment -- --preset policies --policy ./examples/my-policy.ts --workload pingpong,stream
 *
 * "Second touch, CPU-aware": a page the device faults on for the first time is mapped
 * remotely (through the aperture) for a lease of `leaseNs`; when the lease is over the mapping
 * is shot down, and the page migrates on its next device fault, unless the CPU
 * took it back less than `cooldownNs` ago — then it is pinned in system memory, mapped
 * remotely, for `pinNs`. Tree prefetch (NVIDIA's, 51 % density) brings neighbours along with
 * the pages that migrate, and eviction picks the least frequently used 2 MiB chunk.
 *
 * A policy is a plain object (or a module exporting a factory returning one): `name` and
 * `decide` are required; every other hook is optional. Pages are indices into the managed
 * range; lists come as typed arrays with a count, valid only during the call.
 */
import {
  DECIDE_MIGRATE, DECIDE_PIN, DECIDE_REMOTE, lfuEviction, type MigrationPolicy, type PolicyFactory,
} from '../src/policy/index.js';

const createPolicy: PolicyFactory = (options = {}) => {
  const cooldownNs = typeof options.cooldownNs === 'number' ? options.cooldownNs : 2_000_000; // 2 ms
  const pinNs = typeof options.pinNs === 'number' ? options.pinNs : 20_000_000; // 20 ms
  const leaseNs = typeof options.leaseNs === 'number' ? options.leaseNs : 100_000; // 100 µs
  const touches = new Map<number, number>(); // device faults per page
  let pinned = 0;
  let remote = 0;

  const policy: MigrationPolicy = {
    name: 'second-touch-cpu-aware',

    // Once per serviced fault group: one decision per faulted page (prefilled with MIGRATE).
    decide(group, view, out) {
      for (let i = 0; i < group.count; i++) {
        const p = group.pages[i];
        const n = (touches.get(p) ?? 0) + 1;
        touches.set(p, n);
        const home = view.lastToHost(p);
        if (home >= 0 && group.now - home < cooldownNs) {
          out.action[i] = DECIDE_PIN; // the CPU wants it too: stop the ping-pong
          out.until[i] = group.now + pinNs;
          pinned++;
        } else if (n < 2) {
          out.action[i] = DECIDE_REMOTE; // first touch: zero-copy, for a lease:
          out.until[i] = group.now + leaseNs; // then the mapping lapses and the page faults again
          remote++;
        } else {
          out.action[i] = DECIDE_MIGRATE;
        }
      }
    },

    // The CPU faulted on device pages: let them come home (the default), forget their touches.
    cpuFault(batch) {
      for (let i = 0; i < batch.count; i++) touches.delete(batch.pages[i]);
    },

    prefetch: {}, // NVIDIA's tree prefetcher as is (threshold 51 %, 64 KiB big pages)
    eviction: lfuEviction(),

    reset() {
      touches.clear();
      pinned = 0;
      remote = 0;
    },
    stats: () => ({ pinned, remote }),
  };
  return policy;
};

export default createPolicy;
