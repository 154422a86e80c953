/**
 * A small, fast, seedable pseudo-random generator for the workload generator.
 *
 * `Math.random` cannot be seeded, and the generator must give byte-identical output for the same
 * seed (benchmarks and reference fixtures depend on it). SFC32 (Chris Doty-Humphrey's "small fast
 * counting" generator) passes PractRand, has a 128-bit state and needs only 32-bit integer ops,
 * which V8 runs without allocation. Seeds are spread into the state with splitmix32 so that
 * neighbouring seeds (instance 0, 1, 2, …) give unrelated sequences.
 */

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** One splitmix32 step: a well-mixed 32-bit value from a 32-bit counter. */
function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A seeded SFC32 generator. Equal seeds (and streams) always give equal sequences. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /**
   * @param seed any integer (only its low 32 bits count)
   * @param stream a second integer selecting an independent sequence for the same seed
   *   (the generator gives every instance its own stream)
   */
  constructor(seed: number, stream = 0) {
    const s = seed >>> 0;
    const t = Math.imul(stream >>> 0, 0x27d4eb2f) ^ 0x165667b1;
    this.a = splitmix32(s);
    this.b = splitmix32(this.a ^ t);
    this.c = splitmix32(this.b + s);
    this.d = 1;
    // Discard the first outputs: SFC32 mixes its counter-seeded state within a dozen rounds.
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1) with 32 bits of randomness. */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [0, n) for 0 < n ≤ 2^32 (multiply-shift; bias below 2^-32 · n, irrelevant here). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  /** One element of a non-empty array, uniformly. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** A Poisson-distributed count with mean `lambda` (Knuth's method; fine for small means). */
  poisson(lambda: number): number {
    if (lambda <= 0) return 0;
    const limit = Math.exp(-lambda);
    let k = 0;
    let p = this.float();
    while (p > limit) {
      k++;
      p *= this.float();
    }
    return k;
  }

  /** 32 random hex digits (a UUID's worth, without dashes or version bits). */
  hex32(): string {
    return hex8(this.u32()) + hex8(this.u32()) + hex8(this.u32()) + hex8(this.u32());
  }

  /** A random RFC 4122 version-4 UUID, `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`. */
  uuid4(): string {
    const a = this.u32();
    const b = this.u32();
    const c = this.u32();
    const d = this.u32();
    // Version nibble 4 in b's third byte, variant bits 10 in c's top byte.
    const bv = ((b & 0xffff0fff) | 0x00004000) >>> 0;
    const cv = ((c & 0x3fffffff) | 0x80000000) >>> 0;
    const bh = hex8(bv);
    const ch = hex8(cv);
    return `${hex8(a)}-${bh.slice(0, 4)}-${bh.slice(4)}-${ch.slice(0, 4)}-${ch.slice(4)}${hex8(d)}`;
  }
}

function hex8(x: number): string {
  return HEX[x >>> 24]! + HEX[(x >>> 16) & 255]! + HEX[(x >>> 8) & 255]! + HEX[x & 255]!;
}
