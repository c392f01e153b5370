import { expect } from 'chai'
import { mapLimited } from '../../../node/util/map-limited.js'

describe('mapLimited', () => {
  it('keeps results in item order', async () => {
    // Later items finish first, so the order cannot come from completion.
    const results = await mapLimited([30, 20, 10, 0], 4, async delayMs => {
      await new Promise(resolve => setTimeout(resolve, delayMs))
      return delayMs * 2
    })

    expect(results).to.deep.equal([60, 40, 20, 0])
  })

  it('runs at most the given number at once', async () => {
    let running = 0
    let peak = 0

    await mapLimited(Array.from({ length: 20 }, (_, index) => index), 3, async () => {
      running++
      peak = Math.max(peak, running)
      await new Promise(resolve => setTimeout(resolve, 5))
      running--
    })

    expect(peak).to.equal(3)
  })

  it('returns an empty list for no items', async () => {
    expect(await mapLimited([], 3, async () => 1)).to.deep.equal([])
  })

  it('rejects with the first failure', async () => {
    const failure = await mapLimited([1, 2, 3], 2, async item => {
      if (item === 2) {
        throw new Error('item 2 failed')
      }
      return item
    }).then(() => undefined, (err: Error) => err)

    expect(failure?.message).to.equal('item 2 failed')
  })
})
