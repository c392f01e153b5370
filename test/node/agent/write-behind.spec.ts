import { expect } from 'chai'
import { WriteBehind } from '../../../node/agent/write-behind.js'

describe('WriteBehind', () => {
  it('wait resolves on flushAll', async () => {
    // A delay no test waits for, so only the flush can resolve the waits.
    const writes = new WriteBehind(600_000)
    const order: string[] = []
    const first = writes.wait('a').then(() => { order.push('a') })
    const second = writes.wait('b').then(() => { order.push('b') })

    expect(writes.size).to.equal(2)
    writes.flushAll()
    await Promise.all([first, second])
    expect(order).to.deep.equal(['a', 'b'])
    expect(writes.size).to.equal(0)
  })

  it('flush starts one key only', async () => {
    const writes = new WriteBehind(600_000)
    const started: string[] = []
    const first = writes.wait('a').then(() => { started.push('a') })
    void writes.wait('b').then(() => { started.push('b') })

    expect(writes.flush('a')).to.equal(true)
    expect(writes.flush('missing')).to.equal(false)
    await first
    expect(started).to.deep.equal(['a'])
    expect(writes.size).to.equal(1)
    writes.flushAll()
  })

  it('wait after flushAll does not wait', async () => {
    const writes = new WriteBehind(600_000)
    writes.flushAll()

    await writes.wait('a')

    expect(writes.size).to.equal(0)
  })

  it('wait with atOnce does not wait', async () => {
    const writes = new WriteBehind(600_000)

    await writes.wait('a', true)

    expect(writes.size).to.equal(0)
  })

  it('wait resolves after the delay', async () => {
    const writes = new WriteBehind(20)

    const waiting = writes.wait('a')
    expect(writes.size).to.equal(1)
    await waiting

    expect(writes.size).to.equal(0)
  })
})
