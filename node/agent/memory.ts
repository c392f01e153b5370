/**
 * Gives back the memory the agent's start grew into. Loading libp2p grows
 * V8's young generation to about 32 MiB on Node 20. In measurements here, an
 * idle agent kept it that large until a full garbage collection started V8's
 * memory reducer, which shrank it about 8 s later. One full collection after
 * the start brought a measured agent process from about 100 MB to about
 * 80 MB resident.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { logger } from '@libp2p/logger'

const log = logger('kilomesh:memory')

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
