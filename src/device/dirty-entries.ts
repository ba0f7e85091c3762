/**
 * The dirty entries of a GpuPageTable (page-table.ts), for its flush: one 512-bit map per
 * table with changes, so marking an entry is a bit operation, not a hash-set insert, and a
 * flush drains them in ascending order into runs of writeBuffer.
 */
/** The dirty entries of a GpuPageTable: one 512-bit map per table with changes. */
export class DirtyEntries {
  readonly #bits = new Map<number, Uint32Array>();
  /** Entries per table (PT_ENTRIES), a multiple of 32. */
  readonly #entries: number;
  size = 0;

  constructor(entriesPerTable: number) {
    this.#entries = entriesPerTable;
  }

  #of(t: number): Uint32Array {
    let b = this.#bits.get(t);
    if (b === undefined) {
      b = new Uint32Array(this.#entries / 32);
      this.#bits.set(t, b);
    }
    return b;
  }

  add(t: number, k: number): void {
    const b = this.#of(t);
    const w = k >>> 5;
    const m = 1 << (k & 31);
    if ((b[w] & m) === 0) {
      b[w] |= m;
      this.size++;
    }
  }

  addTable(t: number): void {
    const b = this.#of(t);
    for (let w = 0; w < b.length; w++) this.size += 32 - popcount(b[w]);
    b.fill(0xffffffff);
  }

  dropTable(t: number): void {
    const b = this.#bits.get(t);
    if (b === undefined) return;
    for (let w = 0; w < b.length; w++) this.size -= popcount(b[w]);
    this.#bits.delete(t);
  }

  /** Every dirty global index (table * entriesPerTable + k), ascending; the set is left empty. */
  drain(): Float64Array {
    const out = new Float64Array(this.size);
    let n = 0;
    const tables = [...this.#bits.keys()].sort((a, b) => a - b);
    for (const t of tables) {
      const b = this.#bits.get(t)!;
      for (let w = 0; w < b.length; w++) {
        let x = b[w];
        while (x !== 0) {
          const bit = 31 - Math.clz32(x & -x);
          out[n++] = t * this.#entries + w * 32 + bit;
          x &= x - 1;
        }
      }
    }
    this.#bits.clear();
    this.size = 0;
    return out;
  }
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}
