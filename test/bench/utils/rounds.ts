/** Runs timed variants of one benchmark in alternating rounds. */

/** One way of doing the measured work; only `run` is timed. */
export interface Variant {
  run: () => Promise<void>
  /** Runs before each timed call, such as emptying a store so the next fetch transfers. */
  prepare?: () => Promise<void>
  /** Runs after each timed call, such as stopping a process whose start was timed. */
  cleanup?: () => Promise<void>
}

export interface RoundOptions {
  rounds: number
  /** Rounds run first and left out of the samples: they load code, open files and grow buffers. */
  warmupRounds: number
}

/**
 * Times every variant once per round and returns the samples in
 * milliseconds, by variant name. The variants interleave and their order
 * rotates each round, so each one runs first equally often and drift in the
 * machine's load reaches every variant alike.
 */
export async function runRounds (variants: Record<string, Variant>, options: RoundOptions): Promise<Record<string, number[]>> {
  const names = Object.keys(variants)
  const samples: Record<string, number[]> = Object.fromEntries(names.map(name => [name, []]))

  for (let round = 0; round < options.warmupRounds + options.rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length] as string
      const variant = variants[name] as Variant
      await variant.prepare?.()

      let elapsedMs: number
      try {
        const startMs = performance.now()
        await variant.run()
        elapsedMs = performance.now() - startMs
      } finally {
        await variant.cleanup?.()
      }

      if (round >= options.warmupRounds) {
        samples[name]?.push(elapsedMs)
      }
    }
  }
  return samples
}
