/**
 * NVIDIA's thrashing detection (uvm_perf_thrashing.c) at its module defaults: each decision at
 * the source's numbers. The driver here is a strict two-party ping-pong on one page: the
 * processor without the page faults, a NONE hint migrates it (thrashing_event_cb), a THROTTLE
 * hint makes the faulting processor sleep until the throttling end and fault again.
 */
import { describe, expect, it } from 'vitest';
import {
  CPU, firstTouch, HINT_NONE, HINT_PIN, HINT_THROTTLE, PolicyEngine, Residency, THRASHING_DEFAULTS, ThrashingDetector, ThrashingMeter,
  type ThrashingHint,
} from '../../src/policy/index.js';

const GPU = 0;
const P = 5;

interface Step { t: number; who: number; hint: ThrashingHint; throttlesSoFar: number }

function pingPong(det: ThrashingDetector, gapNs = 100_000, maxSteps = 500): { steps: Step[]; t: number } {
  const steps: Step[] = [];
  let holder = CPU;
  let t = 0;
  let throttles = 0;
  for (let s = 0; s < maxSteps; s++) {
    const who = holder === CPU ? GPU : CPU;
    const hint = det.getHint(P, who, t);
    if (hint.type === HINT_THROTTLE) throttles++;
    steps.push({ t, who, hint, throttlesSoFar: throttles });
    if (hint.type === HINT_NONE) {
      det.onMigration([P], 1, who, who === CPU ? 'cpuFault' : 'fault', t);
      holder = who;
      t += gapNs;
    } else if (hint.type === HINT_THROTTLE) {
      t = hint.until;
    } else {
      break;
    }
  }
  return { steps, t };
}

describe('thrashing detection: parameters', () => {
  it('takes the module defaults of uvm_perf_thrashing.c', () => {
    expect(THRASHING_DEFAULTS).toMatchObject({
      threshold: 3, pinThreshold: 10, lapseNs: 500_000, napNs: 500_000, epochNs: 1_000_000_000,
      pinNs: 150_000_000, maxResets: 4,
    });
  });
});

describe('thrashing detection: detect, throttle, pin', () => {
  it('detects on the 3rd event within the lapse, not the 2nd', () => {
    const det = new ThrashingDetector();
    // Migration 1 stamps the block; 2 (other processor, within the lapse) creates the
    // per-page state and stamps the page; 3, 4, 5 are events 1, 2, 3.
    const who = [GPU, CPU, GPU, CPU, GPU];
    for (let i = 0; i < 4; i++) det.onMigration([P], 1, who[i], 'fault', i * 100_000);
    expect(det.pageState(P)!.events).toBe(2);
    expect(det.isThrashing(P)).toBe(false);
    det.onMigration([P], 1, who[4], 'fault', 400_000);
    expect(det.pageState(P)!.events).toBe(3);
    expect(det.isThrashing(P)).toBe(true);
  });

  it('counts an event at exactly the lapse, not at lapse + 1 ns', () => {
    const a = new ThrashingDetector();
    const b = new ThrashingDetector();
    for (const det of [a, b]) {
      det.onMigration([P], 1, GPU, 'fault', 0);
      det.onMigration([P], 1, CPU, 'fault', 100_000);
    }
    a.onMigration([P], 1, GPU, 'fault', 600_000);
    b.onMigration([P], 1, GPU, 'fault', 600_001);
    expect(a.pageState(P)!.events).toBe(1);
    expect(b.pageState(P)!.events).toBe(0);
  });

  it('throttles with a nap of 500 µs', () => {
    const { steps } = pingPong(new ThrashingDetector());
    const first = steps.find((s) => s.hint.type === HINT_THROTTLE)!;
    // The throttling period began at the do-not-throttle processor's fault, one gap earlier.
    expect(first.hint.until - (first.t - 100_000)).toBe(500_000);
  });

  it('pins on the 10th throttle, not the 9th', () => {
    const det = new ThrashingDetector();
    const { steps } = pingPong(det);
    const pinAt = steps.findIndex((s) => s.hint.type === HINT_PIN);
    expect(pinAt).toBeGreaterThan(0);
    expect(steps[pinAt].throttlesSoFar).toBe(10);
    // After the 9th throttle, faults were answered without a pin until the 10th.
    const ninth = steps.findIndex((s) => s.throttlesSoFar === 9);
    expect(steps.slice(ninth, pinAt).some((s) => s.hint.type === HINT_PIN)).toBe(false);
    expect(det.pageState(P)!.pinned).toBe(true);
    expect(det.pageState(P)!.throttlingCount).toBe(0); // thrashing_pin_page clears it
    expect(det.stats.pins).toBe(1);
  });

  it('pins on the 9th with pinThreshold 9 (the count is the parameter)', () => {
    const { steps } = pingPong(new ThrashingDetector({ pinThreshold: 9 }));
    const pin = steps.find((s) => s.hint.type === HINT_PIN)!;
    expect(pin.throttlesSoFar).toBe(9);
  });

  it('unpins 150 ms after the pin (the unpin worker, 20 µs timer granularity)', () => {
    const det = new ThrashingDetector();
    const { steps } = pingPong(det);
    const pin = steps.find((s) => s.hint.type === HINT_PIN)!;
    expect(pin.hint.until).toBe(pin.t + 150_000_000);
    const early = pin.t + 150_000_000 - 20_000 - 1;
    expect(det.getHint(P, CPU, early).type).toBe(HINT_PIN);
    expect(det.pageState(P)!.pinned).toBe(true);
    expect(det.getHint(P, CPU, pin.t + 150_000_000).type).toBe(HINT_NONE);
    expect(det.pageState(P)!.pinned).toBe(false);
    expect(det.pageState(P)!.events).toBe(0); // thrashing_reset_page
  });
});

describe('thrashing detection: epoch resets', () => {
  function thrashThenQuiet(det: ThrashingDetector, start: number): number {
    const who = [GPU, CPU, GPU, CPU, GPU];
    for (let i = 0; i < 5; i++) det.onMigration([P], 1, who[i], 'fault', start + i * 100_000);
    expect(det.isThrashing(P)).toBe(true);
    return start + 400_000; // last_thrashing_time_stamp
  }

  it('resets after 1 s quiet (strictly more), not at 1 s', () => {
    const det = new ThrashingDetector();
    const last = thrashThenQuiet(det, 0);
    det.getHint(P, CPU, last + 1_000_000_000);
    expect(det.stats.resets).toBe(0);
    det.getHint(P, CPU, last + 1_000_000_001);
    expect(det.stats.resets).toBe(1);
    expect(det.pageState(P)).toBeUndefined();
  });

  it('resets a block at most 4 times', () => {
    const det = new ThrashingDetector();
    let t = 0;
    for (let round = 1; round <= 6; round++) {
      const last = thrashThenQuiet(det, t);
      det.getHint(P, CPU, last + 1_000_000_001);
      expect(det.stats.resets).toBe(Math.min(round, 4));
      t = last + 2_000_000_000;
    }
  });
});

describe('thrashing detection: pinned blocks never epoch-reset (uvm_perf_thrashing_get_hint: pinned_pages.count == 0)', () => {
  it('a block with a page pinned keeps its state past the 1 s epoch; once unpinned it may reset', () => {
    const det = new ThrashingDetector({ pinNs: 10_000_000_000 }); // pinned for 10 s
    const { steps } = pingPong(det);
    const pin = steps.find((s) => s.hint.type === HINT_PIN)!;
    expect(det.pageState(P)!.pinned).toBe(true);
    // 2 s of quiet: an unpinned block would reset here.
    expect(det.getHint(P, CPU, pin.t + 2_000_000_000).type).toBe(HINT_PIN);
    expect(det.stats.resets).toBe(0);
    expect(det.pageState(P)!.pinned).toBe(true);
    // The pin lapses at 10 s (the unpin resets the page); then the quiet block resets.
    det.getHint(P, CPU, pin.t + 10_000_000_000);
    expect(det.pageState(P)?.pinned ?? false).toBe(false);
    det.getHint(P, CPU, pin.t + 10_000_000_001);
    expect(det.stats.resets).toBe(1);
  });
});

describe('the run\'s thrashing count (ThrashingMeter): one detector, beside no other', () => {
  it.for([
    // moves of one page at these times → events counted, and whether its last move thrashed
    { name: 'two quick moves after the first: under the threshold', times: [0, 100_000, 200_000], events: 0, last: false },
    { name: 'the 3rd quick move is the first event', times: [0, 100_000, 200_000, 300_000], events: 1, last: true },
    { name: 'each quick move after it is one more', times: [0, 100_000, 200_000, 300_000, 400_000], events: 2, last: true },
    { name: 'exactly the lapse apart still counts', times: [0, 500_000, 1_000_000, 1_500_000], events: 1, last: true },
    { name: 'a slow move ends the run', times: [0, 100_000, 200_000, 300_000, 800_001, 900_000], events: 1, last: false },
  ])('$name', ({ times, events, last }) => {
    const m = new ThrashingMeter(8);
    expect([m.lapseNs, m.threshold]).toEqual([THRASHING_DEFAULTS.lapseNs, THRASHING_DEFAULTS.threshold]);
    for (const t of times) m.moved([P], t);
    expect(m.events).toBe(events);
    expect(m.thrashing(P)).toBe(last);
    expect(m.thrashing(P + 1)).toBe(false);
  });

  it('the engine feeds it every committed move, either way; the residency counts no thrashing', () => {
    const e = new PolicyEngine(firstTouch(), { pages: 16, capacityPages: 16 });
    const pages = Float64Array.of(P);
    const access = new Uint8Array(1);
    for (let k = 0; k < 3; k++) {
      e.commit(e.serviceGroup(0, pages, access, 1, 1, k * 200_000).plan); // to the device
      e.commit(e.serviceCpuFault(P, 1, k * 200_000 + 100_000).plan); // and home
    }
    expect(e.residency.stats.migrationsToDevice + e.residency.stats.migrationsToHost).toBeGreaterThanOrEqual(6);
    expect(e.thrashing.events).toBeGreaterThan(0);
    expect('thrashingEvents' in e.residency.stats).toBe(false);
    expect('thrashing' in Residency.prototype).toBe(false);
  });
});
