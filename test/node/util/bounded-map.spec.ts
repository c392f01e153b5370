import { expect } from 'chai'
import { setMostRecent } from '../../../node/util/bounded-map.js'

describe('setMostRecent', () => {
  it('drops the least recent entry', () => {
    const map = new Map<string, number>()
    setMostRecent(map, 'a', 1, 2)
    setMostRecent(map, 'b', 2, 2)
    setMostRecent(map, 'c', 3, 2)

    expect([...map.keys()]).to.deep.equal(['b', 'c'])
  })

  it('moves an updated key to the end', () => {
    const map = new Map<string, number>()
    setMostRecent(map, 'a', 1, 2)
    setMostRecent(map, 'b', 2, 2)
    setMostRecent(map, 'a', 10, 2)
    setMostRecent(map, 'c', 3, 2)

    expect([...map.entries()]).to.deep.equal([['a', 10], ['c', 3]])
  })
})
