import { expect } from 'chai'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { anySignal, SharedWorkSignal, startDeadline, timeoutSignal } from '../../../node/net/signals.js'

// A forced garbage collection is what loses an AbortSignal.timeout held
// only by AbortSignal.any in Node.js 20. The flag is set at run time, so
// mocha needs no option for it.
setFlagsFromString('--expose-gc')
const collectGarbage = runInNewContext('gc') as () => void

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

describe('net signals', () => {
  it('timeoutSignal aborts after a garbage collection', async () => {
    const signal = timeoutSignal(100, new AbortController().signal)

    for (let round = 0; round < 5; round++) {
      collectGarbage()
      await sleep(10)
    }
    await sleep(250)

    expect(signal.aborted).to.equal(true)
    expect((signal.reason as Error).name).to.equal('TimeoutError')
  })

  it('anySignal aborts with the first source', () => {
    const first = new AbortController()
    const second = new AbortController()
    const signal = anySignal([first.signal, second.signal])

    second.abort(new Error('second gave up'))

    expect(signal.aborted).to.equal(true)
    expect((signal.reason as Error).message).to.equal('second gave up')
  })

  it('SharedWorkSignal aborts when the last caller gives up', () => {
    const shared = new SharedWorkSignal()
    const first = new AbortController()
    const second = new AbortController()
    shared.join(first.signal)
    shared.join(second.signal)

    first.abort(new Error('first gave up'))
    expect(shared.aborted).to.equal(false)
    second.abort(new Error('second gave up'))

    expect(shared.aborted).to.equal(true)
  })

  it('SharedWorkSignal keeps going after a caller leaves', () => {
    const shared = new SharedWorkSignal()
    const waiting = new AbortController()
    const leave = shared.join()
    shared.join(waiting.signal)

    leave()
    waiting.abort(new Error('gave up'))

    expect(shared.aborted).to.equal(true)
  })

  it('SharedWorkSignal counts an aborted joiner out', () => {
    const shared = new SharedWorkSignal()
    const late = new AbortController()
    late.abort(new Error('gave up already'))

    shared.join(late.signal)

    expect(shared.aborted).to.equal(true)
  })

  it('startDeadline aborts work not started', async () => {
    const deadline = startDeadline(undefined, Date.now() + 50, () => false, () => new Error('not started'))

    await sleep(150)

    expect(deadline.signal.aborted).to.equal(true)
    expect((deadline.signal.reason as Error).message).to.equal('not started')
  })

  it('startDeadline lets started work run on', async () => {
    const deadline = startDeadline(undefined, Date.now() + 50, () => true, () => new Error('not started'))

    await sleep(150)

    expect(deadline.signal.aborted).to.equal(false)
  })

  it('startDeadline follows the caller signal', () => {
    const caller = new AbortController()
    const deadline = startDeadline(caller.signal, Date.now() + 60_000, () => true, () => new Error('not started'))

    caller.abort(new Error('client left'))
    deadline.clear()

    expect(deadline.signal.aborted).to.equal(true)
    expect((deadline.signal.reason as Error).message).to.equal('client left')
  })

  it('startDeadline clear stops the deadline', async () => {
    const deadline = startDeadline(undefined, Date.now() + 50, () => false, () => new Error('not started'))

    deadline.clear()
    await sleep(150)

    expect(deadline.signal.aborted).to.equal(false)
  })
})
