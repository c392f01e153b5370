import { expect } from 'chai'
import { PullQueue, type PullQueueInit } from '../../../node/agent/subscription-pulls.js'
import type { TagVersion } from '../../../node/store/pins.js'

function version (n: number): TagVersion {
  return { digest: `sha256:${n.toString(16).padStart(64, '0')}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 100 + n }
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Polls `condition` every 5 ms for at most `timeoutMs`. */
async function waitFor (condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    }
    await sleep(5)
  }
}

interface Call {
  key: string
  digest: string
  signal: AbortSignal
  /** Reports received bytes to the queue, as pullImage's progress does. */
  progress: () => void
  settle: (error?: Error) => void
  settled: boolean
}

/**
 * A pull function driven by the test: each call waits until the test
 * settles it, and aborting its signal rejects it, as pullImage does.
 */
function scriptedPull (): { init: PullQueueInit['pull'], calls: Call[], active: () => Map<string, number>, maxActive: () => number } {
  const calls: Call[] = []
  const activeByTag = new Map<string, number>()
  let active = 0
  let maxActive = 0

  const init: PullQueueInit['pull'] = async (repository, tag, target, signal, onProgress) => {
    const key = `${repository}:${tag}`
    activeByTag.set(key, (activeByTag.get(key) ?? 0) + 1)
    active++
    maxActive = Math.max(maxActive, active)
    try {
      await new Promise<void>((resolve, reject) => {
        const call: Call = {
          key,
          digest: target.digest,
          signal,
          progress: onProgress,
          settled: false,
          settle: error => {
            call.settled = true
            if (error == null) {
              resolve()
            } else {
              reject(error)
            }
          }
        }
        calls.push(call)
        signal.addEventListener('abort', () => { call.settle(signal.reason) }, { once: true })
      })
    } finally {
      active--
      activeByTag.set(key, (activeByTag.get(key) ?? 1) - 1)
    }
  }

  return { init, calls, active: () => activeByTag, maxActive: () => maxActive }
}

function namedError (name: string, message: string): Error {
  const error = new Error(message)
  error.name = name
  return error
}

describe('subscriptions pull queue', function () {
  this.timeout(10_000)
  const queues: PullQueue[] = []

  function createQueue (init: Omit<PullQueueInit, 'pull'>, pull: PullQueueInit['pull']): PullQueue {
    const queue = new PullQueue({ ...init, pull })
    queues.push(queue)
    return queue
  }

  afterEach(async () => {
    await Promise.all(queues.splice(0).map(async queue => queue.stop()))
  })

  it('pulls the target version once', async () => {
    const pull = scriptedPull()
    const queue = createQueue({}, pull.init)

    queue.setTarget('demo/httpd', 'stable', version(1))
    queue.setTarget('demo/httpd', 'stable', version(1))
    await waitFor(() => pull.calls.length === 1, 'the first pull')
    queue.setTarget('demo/httpd', 'stable', version(1))
    pull.calls[0]?.settle()
    await waitFor(() => queue.status('demo/httpd', 'stable').state === 'idle', 'the queue to go idle')

    expect(pull.calls).to.have.length(1)
    expect(pull.calls[0]?.digest).to.equal(version(1).digest)
  })

  it('supersedes an older pull in progress', async () => {
    const pull = scriptedPull()
    const queue = createQueue({}, pull.init)

    queue.setTarget('demo/httpd', 'stable', version(1))
    await waitFor(() => pull.calls.length === 1, 'the pull of version 1')
    queue.setTarget('demo/httpd', 'stable', version(2))
    await waitFor(() => pull.calls.length === 2, 'the pull of version 2')
    pull.calls[1]?.settle()
    await waitFor(() => queue.status('demo/httpd', 'stable').state === 'idle', 'the queue to go idle')

    expect(pull.calls[0]?.signal.aborted).to.equal(true)
    expect(pull.calls[0]?.settled).to.equal(true)
    expect(pull.calls[1]?.digest).to.equal(version(2).digest)
    expect(pull.maxActive()).to.equal(1)
  })

  it('never runs two pulls of one tag at once', async () => {
    const pull = scriptedPull()
    const queue = createQueue({ maxConcurrentPulls: 4 }, pull.init)

    for (let n = 1; n <= 5; n++) {
      queue.setTarget('demo/httpd', 'stable', version(n))
      await sleep(2)
      expect(pull.active().get('demo/httpd:stable') ?? 0).to.be.at.most(1)
    }
    await waitFor(() => pull.calls.some(call => call.digest === version(5).digest), 'the pull of version 5')
    pull.calls.find(call => call.digest === version(5).digest)?.settle()
    await waitFor(() => queue.status('demo/httpd', 'stable').state === 'idle', 'the queue to go idle')

    expect(pull.maxActive()).to.equal(1)
    expect(pull.calls.filter(call => call.digest !== version(5).digest).every(call => call.signal.aborted)).to.equal(true)
  })

  it('bounds the pulls running at once', async () => {
    const pull = scriptedPull()
    const queue = createQueue({ maxConcurrentPulls: 2 }, pull.init)

    for (let n = 1; n <= 5; n++) {
      queue.setTarget('demo/app', `tag${n}`, version(n))
    }
    await waitFor(() => pull.calls.length === 2, 'two pulls')
    await sleep(30)
    expect(pull.calls).to.have.length(2)
    expect(queue.status('demo/app', 'tag5').state).to.equal('queued')

    for (let settled = 0; settled < 5; settled++) {
      await waitFor(() => pull.calls.length > settled, `pull ${settled + 1}`)
      pull.calls[settled]?.settle()
    }
    await waitFor(() => pull.calls.every(call => call.settled), 'every pull to settle')

    expect(pull.calls.map(call => call.key).sort()).to.deep.equal(['demo/app:tag1', 'demo/app:tag2', 'demo/app:tag3', 'demo/app:tag4', 'demo/app:tag5'])
    expect(pull.maxActive()).to.equal(2)
  })

  it('retries a failed pull with growing delays', async () => {
    const pull = scriptedPull()
    const queue = createQueue({ retryInitialDelayMs: 40, retryMaxDelayMs: 1000 }, pull.init)
    const startedAt: number[] = []

    queue.setTarget('demo/httpd', 'stable', version(1))
    for (let attempt = 0; attempt < 3; attempt++) {
      await waitFor(() => pull.calls.length === attempt + 1, `attempt ${attempt + 1}`)
      startedAt.push(Date.now())
      pull.calls[attempt]?.settle(namedError('NoSourceError', 'no connected peer has it'))
      if (attempt < 2) {
        await waitFor(() => queue.status('demo/httpd', 'stable').state === 'retrying', 'the retry to be scheduled')
      }
    }
    await waitFor(() => pull.calls.length === 4, 'attempt 4')
    pull.calls[3]?.settle()
    await waitFor(() => queue.status('demo/httpd', 'stable').state === 'idle', 'the queue to go idle')

    // The first two retry delays are 40 and 80 ms, each with up to 20 % jitter.
    const firstGapMs = (startedAt[1] ?? 0) - (startedAt[0] ?? 0)
    const secondGapMs = (startedAt[2] ?? 0) - (startedAt[1] ?? 0)
    expect(firstGapMs).to.be.at.least(30)
    expect(secondGapMs).to.be.at.least(60)
    expect(pull.calls.every(call => call.digest === version(1).digest)).to.equal(true)
  })

  it('reports a retry in its status', async () => {
    const pull = scriptedPull()
    const queue = createQueue({ retryInitialDelayMs: 5000 }, pull.init)

    queue.setTarget('demo/httpd', 'stable', version(1))
    await waitFor(() => pull.calls.length === 1, 'the first attempt')
    pull.calls[0]?.settle(namedError('NoSourceError', 'no connected peer has it'))
    await waitFor(() => queue.status('demo/httpd', 'stable').state === 'retrying', 'the retry to be scheduled')

    const status = queue.status('demo/httpd', 'stable')
    expect(status.attempts).to.equal(1)
    expect(status.error).to.equal('no connected peer has it')
    expect(status.digest).to.equal(version(1).digest)
    expect(status.retryInMs).to.be.within(1, 6000)
  })

  it('retries waiting pulls soon after a connection', async () => {
    const pull = scriptedPull()
    const queue = createQueue({ retryInitialDelayMs: 60_000 }, pull.init)

    queue.setTarget('demo/httpd', 'stable', version(1))
    await waitFor(() => pull.calls.length === 1, 'the first attempt')
    pull.calls[0]?.settle(namedError('NoSourceError', 'no connected peer has it'))
    await waitFor(() => queue.status('demo/httpd', 'stable').state === 'retrying', 'the retry to be scheduled')
    queue.retrySoon()
    await waitFor(() => pull.calls.length === 2, 'the second attempt', 2000)

    expect(pull.calls[1]?.digest).to.equal(version(1).digest)
  })

  it('does not retry a version that cannot be pulled', async () => {
    const pull = scriptedPull()
    const queue = createQueue({ retryInitialDelayMs: 10 }, pull.init)

    queue.setTarget('library/busybox', '1.35', version(1))
    await waitFor(() => pull.calls.length === 1, 'the first attempt')
    pull.calls[0]?.settle(namedError('TagNotFoundError', 'no manifest for platform linux/riscv64'))
    await waitFor(() => queue.status('library/busybox', '1.35').state === 'failed', 'the failure')
    queue.setTarget('library/busybox', '1.35', version(1))
    await sleep(60)

    expect(pull.calls).to.have.length(1)
    expect(queue.status('library/busybox', '1.35').error).to.match(/riscv64/)

    queue.setTarget('library/busybox', '1.35', version(2))
    await waitFor(() => pull.calls.length === 2, 'the pull of a newer version')
    expect(pull.calls[1]?.digest).to.equal(version(2).digest)
  })

  it('aborts a pull no longer needed', async () => {
    const pull = scriptedPull()
    const queue = createQueue({}, pull.init)

    queue.setTarget('demo/httpd', 'stable', version(1))
    await waitFor(() => pull.calls.length === 1, 'the pull')
    queue.cancel('demo/httpd', 'stable')
    await waitFor(() => pull.calls[0]?.settled === true, 'the pull to stop')
    await waitFor(() => queue.status('demo/httpd', 'stable').state === 'idle', 'the queue to go idle')

    expect(pull.calls[0]?.signal.aborted).to.equal(true)
    expect(pull.calls).to.have.length(1)
  })

  it('pulls now outside the limit and reports failures', async () => {
    const pull = scriptedPull()
    const queue = createQueue({ maxConcurrentPulls: 1, retryInitialDelayMs: 10 }, pull.init)
    queue.setTarget('demo/other', 'v1', version(9))
    await waitFor(() => pull.calls.length === 1, 'the queued pull')

    const now = queue.pullNow('demo/httpd', 'stable', version(1))
    await waitFor(() => pull.calls.length === 2, 'the immediate pull')
    pull.calls[1]?.settle(namedError('NoSourceError', 'no connected peer has it'))

    let error: Error | undefined
    await now.catch((err: Error) => { error = err })
    expect(error?.message).to.equal('no connected peer has it')
    await sleep(50)
    expect(pull.calls).to.have.length(2)
    expect(queue.status('demo/httpd', 'stable').state).to.equal('idle')
  })

  it('pull now replaces a pull in progress', async () => {
    const pull = scriptedPull()
    const queue = createQueue({}, pull.init)
    queue.setTarget('demo/httpd', 'stable', version(2))
    await waitFor(() => pull.calls.length === 1, 'the automatic pull')

    const now = queue.pullNow('demo/httpd', 'stable', version(1))
    await waitFor(() => pull.calls.length === 2, 'the immediate pull')
    pull.calls[1]?.settle()
    await now

    expect(pull.calls[0]?.signal.aborted).to.equal(true)
    expect(pull.maxActive()).to.equal(1)
  })

  it('aborts pulls on stop', async () => {
    const pull = scriptedPull()
    const queue = createQueue({}, pull.init)
    queue.setTarget('demo/httpd', 'stable', version(1))
    await waitFor(() => pull.calls.length === 1, 'the pull')

    await queue.stop()
    queue.setTarget('demo/httpd', 'stable', version(2))
    await sleep(20)

    expect(pull.calls[0]?.signal.aborted).to.equal(true)
    expect(pull.calls).to.have.length(1)
  })

  it('reports a source wait after a failure', async () => {
    const pull = scriptedPull()
    const queue = createQueue({ retryInitialDelayMs: 5000 }, pull.init)

    queue.setTarget('demo/httpd', 'stable', version(1))
    await waitFor(() => pull.calls.length === 1, 'the first attempt')
    const attemptMs = Date.now()
    pull.calls[0]?.settle(namedError('NoSourceError', 'could not fetch blob: no reachable peer has it'))
    await waitFor(() => queue.status('demo/httpd', 'stable').state === 'retrying', 'the retry to be scheduled')

    const status = queue.status('demo/httpd', 'stable')
    expect(status.waitingForSource).to.equal(true)
    expect(Date.parse(status.waitingSince ?? '')).to.be.within(attemptMs - 1000, attemptMs + 50)
    expect(status.lastAttemptAt).to.equal(status.waitingSince)
    expect(Date.parse(status.nextAttemptAt ?? '') - Date.now()).to.be.within(0, 6000)
    expect(Math.abs(Date.parse(status.nextAttemptAt ?? '') - Date.now() - (status.retryInMs ?? 0))).to.be.below(100)
    expect(status.attempts).to.equal(1)
    expect(status.error).to.match(/no reachable peer/)
  })

  it('keeps the source wait through the next attempt', async () => {
    const pull = scriptedPull()
    const queue = createQueue({ retryInitialDelayMs: 20 }, pull.init)

    queue.setTarget('demo/httpd', 'stable', version(1))
    await waitFor(() => pull.calls.length === 1, 'the first attempt')
    pull.calls[0]?.settle(namedError('NoSourceError', 'no connected peer has it'))
    await waitFor(() => pull.calls.length === 2, 'the second attempt')
    const waiting = queue.status('demo/httpd', 'stable')
    pull.calls[1]?.progress()
    const receiving = queue.status('demo/httpd', 'stable')

    expect(waiting.state).to.equal('pulling')
    expect(waiting.waitingForSource).to.equal(true)
    expect(waiting.attempts).to.equal(1)
    expect(Date.parse(waiting.lastAttemptAt ?? '')).to.be.above(Date.parse(waiting.waitingSince ?? ''))
    expect(receiving.state).to.equal('pulling')
    expect(receiving.waitingForSource).to.equal(false)
    expect(receiving.waitingSince).to.equal(undefined)
  })

  it('reports a running pull without bytes as waiting', async () => {
    const pull = scriptedPull()
    const queue = createQueue({ waitingForSourceAfterMs: 50 }, pull.init)

    queue.setTarget('demo/httpd', 'stable', version(1))
    await waitFor(() => pull.calls.length === 1, 'the first attempt')
    const early = queue.status('demo/httpd', 'stable')
    await waitFor(() => queue.status('demo/httpd', 'stable').waitingForSource, 'the wait to be reported')
    const late = queue.status('demo/httpd', 'stable')

    expect(early.waitingForSource).to.equal(false)
    expect(late.state).to.equal('pulling')
    expect(late.waitingSince).to.equal(late.lastAttemptAt)
    expect(late.attempts).to.equal(0)
  })

  it('does not call another failure a source wait', async () => {
    const pull = scriptedPull()
    const queue = createQueue({ retryInitialDelayMs: 5000 }, pull.init)

    queue.setTarget('demo/httpd', 'stable', version(1))
    await waitFor(() => pull.calls.length === 1, 'the first attempt')
    pull.calls[0]?.settle(namedError('Error', 'ENOSPC: no space left on device'))
    await waitFor(() => queue.status('demo/httpd', 'stable').state === 'retrying', 'the retry to be scheduled')

    const status = queue.status('demo/httpd', 'stable')
    expect(status.waitingForSource).to.equal(false)
    expect(status.waitingSince).to.equal(undefined)
    expect(status.nextAttemptAt).to.be.a('string')
  })

  it('keeps retrying a missing source at the capped delay', async () => {
    const pull = scriptedPull()
    const queue = createQueue({ retryInitialDelayMs: 10, retryMaxDelayMs: 40 }, pull.init)
    const startedAt: number[] = []

    queue.setTarget('demo/httpd', 'stable', version(1))
    for (let attempt = 0; attempt < 8; attempt++) {
      await waitFor(() => pull.calls.length === attempt + 1, `attempt ${attempt + 1}`)
      startedAt.push(Date.now())
      pull.calls[attempt]?.settle(namedError('NoSourceError', 'no connected peer has it'))
    }
    await waitFor(() => pull.calls.length === 9, 'attempt 9')
    pull.calls[8]?.settle()
    await waitFor(() => queue.status('demo/httpd', 'stable').state === 'idle', 'the queue to go idle')

    // Delays of 10, 20 and 40 ms, then 40 ms each, with up to 20 % jitter
    // and some timer lateness on a loaded machine.
    const gapsMs = startedAt.slice(1).map((startMs, i) => startMs - (startedAt[i] ?? 0))
    expect(Math.max(...gapsMs.slice(3))).to.be.below(40 * 1.2 + 100)
    expect(Math.min(...gapsMs.slice(3))).to.be.at.least(30)
    expect(queue.status('demo/httpd', 'stable').waitingForSource).to.equal(false)
  })
})
