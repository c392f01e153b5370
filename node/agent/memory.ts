/**
 * Keeps the agent's memory near what it needs when idle. Loading libp2p grows
 * V8's young generation to 16 to 32 MiB on Node 20, and an idle agent kept it
 * that large until V8's memory reducer shrank it, some seconds after a full
 * garbage collection. Two steps avoid that: the young generation stays at
 * its initial size, and one full collection runs once the agent is ready.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { logger } from '@libp2p/logger'

const log = logger('kilomesh:memory')

/**
 * Stops V8 from growing the young generation past its initial size, a 2 MiB
 * new space on Node 20.20 (32 MiB once grown). Call it before loading
 * libp2p, whose loading would otherwise grow it. Measured on a 2-core
 * machine: an agent with five peers stayed at 77.7 MB resident (median of 3
 * runs) against 77.6 to 88.2 MB without the limit. Two agents in one process
 * moved a 1 MB layer into the store at a median 96.5 MB/s against 98.5 MB/s
 * without it (6 runs each), a gap within that machine's run-to-run noise.
 */
export function limitYoungGeneration (): void {
  // Node applies `--max-semi-space-size` only at start, and the bin cannot
  // pass flags on its `#!/usr/bin/env node` line. V8 reads the growth factor
  // each time it would grow the young generation, so setting it at run time
  // takes effect.
  setFlagsFromString('--semi-space-growth-factor=1')
  log('limited the young generation to its initial size')
}

/**
 * Delay between the agent's start and the full garbage collection, in ms.
 * The shrink comes about 8 s after the collection, so running it at once
 * gives the memory back soonest.
 */
export const STARTUP_GC_DELAY_MS = 0

/**
 * Runs one full garbage collection `delayMs` from now, unless the returned
 * function cancels it first. The timer never keeps the process alive.
 */
export function scheduleStartupGc (delayMs = STARTUP_GC_DELAY_MS): () => void {
  const timer = setTimeout(() => {
    try {
      // Node has no API for a full collection. The V8 flag exposes gc() to
      // new contexts only, so the agent's own globals stay as they were.
      setFlagsFromString('--expose-gc')
      const gc = runInNewContext('gc') as () => void
      const startMs = Date.now()
      gc()
      log('ran a full garbage collection after the start in %d ms', Date.now() - startMs)
    } catch (err: any) {
      log('could not run a garbage collection after the start: %e', err)
    }
  }, delayMs)
  timer.unref()
  return () => { clearTimeout(timer) }
}
