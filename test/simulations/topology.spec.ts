import { expect } from 'chai'
import { SeededRandom } from '../../simulations/random.js'
import { buildEdges, clusterMembers, joinPeers, type Edge } from '../../simulations/topology.js'
import type { Topology } from '../../simulations/scenario/types.js'

/** Returns true when every node in 0..count-1 can reach node 0 over `edges`. */
function connected (edges: Edge[], count: number): boolean {
  const neighbours = new Map<number, number[]>()
  for (const [a, b] of edges) {
    neighbours.set(a, [...(neighbours.get(a) ?? []), b])
    neighbours.set(b, [...(neighbours.get(b) ?? []), a])
  }
  const seen = new Set([0])
  const queue = [0]
  while (queue.length > 0) {
    for (const next of neighbours.get(queue.shift() as number) ?? []) {
      if (!seen.has(next)) {
        seen.add(next)
        queue.push(next)
      }
    }
  }
  return seen.size === count
}

function edgesOf (topology: Topology, count: number, seed = 1): Edge[] {
  return buildEdges(topology, count, SeededRandom.fork(seed, 'topology'))
}

describe('topology', () => {
  it('builds full, line, ring and star graphs', () => {
    expect(edgesOf({ kind: 'full' }, 4)).to.deep.equal([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])
    expect(edgesOf({ kind: 'line' }, 4)).to.deep.equal([[0, 1], [1, 2], [2, 3]])
    expect(edgesOf({ kind: 'ring' }, 4)).to.deep.equal([[0, 1], [0, 3], [1, 2], [2, 3]])
    expect(edgesOf({ kind: 'star', hub: 2 }, 4)).to.deep.equal([[0, 2], [1, 2], [2, 3]])
  })

  it('random graph is connected with degree', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const edges = edgesOf({ kind: 'random', degree: 3 }, 30, seed)

      expect(connected(edges, 30), `seed ${seed}`).to.equal(true)
      expect(edges.length, `seed ${seed}`).to.equal(45)
      expect(edges.every(([a, b]) => a < b), `seed ${seed}`).to.equal(true)
    }
  })

  it('same seed gives same random graph', () => {
    expect(edgesOf({ kind: 'random', degree: 3 }, 20, 7)).to.deep.equal(edgesOf({ kind: 'random', degree: 3 }, 20, 7))
    expect(edgesOf({ kind: 'random', degree: 3 }, 20, 7)).to.not.deep.equal(edgesOf({ kind: 'random', degree: 3 }, 20, 8))
  })

  it('joins clusters with bridges', () => {
    const blocks = clusterMembers(12, 3)
    const edges = edgesOf({ kind: 'clusters', count: 3, bridges: 1 }, 12)
    const clusterOf = (node: number): number => blocks.findIndex(block => block.includes(node))
    const bridges = edges.filter(([a, b]) => clusterOf(a) !== clusterOf(b))

    expect(blocks).to.deep.equal([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]])
    expect(bridges).to.have.length(3)
    expect(edges.length - bridges.length).to.equal(3 * 6)
    expect(connected(edges, 12)).to.equal(true)
  })

  it('chooses peers for joining nodes', () => {
    const random = SeededRandom.fork(1, 'topology')

    expect(joinPeers({ kind: 'line' }, [0, 1, 2], random)).to.deep.equal([2])
    expect(joinPeers({ kind: 'ring' }, [0, 1, 2], random)).to.deep.equal([0, 2])
    expect(joinPeers({ kind: 'star', hub: 1 }, [0, 1, 2], random)).to.deep.equal([1])
    expect(joinPeers({ kind: 'full' }, [2, 0, 1], random)).to.deep.equal([0, 1, 2])
    expect(joinPeers({ kind: 'random', degree: 2 }, [0, 1, 2, 3], random)).to.have.length(2)
    expect(joinPeers({ kind: 'random', degree: 2 }, [], random)).to.deep.equal([])
  })
})

describe('seeded random', () => {
  it('repeats a sequence per seed and label', () => {
    const first = SeededRandom.fork(42, 'choices')
    const second = SeededRandom.fork(42, 'choices')
    const other = SeededRandom.fork(42, 'jitter')

    const sequence = Array.from({ length: 5 }, () => first.next())
    expect(Array.from({ length: 5 }, () => second.next())).to.deep.equal(sequence)
    expect(Array.from({ length: 5 }, () => other.next())).to.not.deep.equal(sequence)
    expect(sequence.every(value => value >= 0 && value < 1)).to.equal(true)
  })

  it('picks distinct items', () => {
    const picked = SeededRandom.fork(1, 'x').pick([1, 2, 3, 4, 5], 3)

    expect(new Set(picked).size).to.equal(3)
    expect(picked.every(item => [1, 2, 3, 4, 5].includes(item))).to.equal(true)
  })
})
