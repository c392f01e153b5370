import { expect } from 'chai'
import { WriteBehind } from '../../../node/agent/write-behind.js'

describe('WriteBehind', () => {
  it('wait resolves on flush', async () => {
    // A delay no test waits for, so only the flush can resolve the waits.
    const writes = new WriteBehind(600_000)
    const order: string[] = []
    const first = writes.wait().then(() => { order.push('first') })
    const second = writes.wait().then(() => { order.push('second') })
    await Promise.resolve()

    expect(writes.size).to.equal(2)
    writes.flush()
    await Promise.all([first, second])
    expect(order).to.deep.equal(['first', 'second'])
    expect(writes.size).to.equal(0)
  })

  it('wait with atOnce does not wait', async () => {
    const writes = new WriteBehind(600_000)

    await writes.wait(true)

    expect(writes.size).to.equal(0)
  })

  it('wait resolves after the delay', async () => {
    const writes = new WriteBehind(1)

    await writes.wait()

    expect(writes.size).to.equal(0)
  })
})
