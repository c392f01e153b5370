/**
 * Builds the links of a topology as pairs of node indices. Each pair is
 * listed once with the lower index first; the runner makes the higher index
 * keep the connection (it starts later, so the lower one is already
 * listening), and the agent's connectivity keeper redials it forever.
 */
import type { SeededRandom } from './random.js'
import type { Topology } from './scenario/types.js'

export type Edge = [number, number]

/** Adds an edge unless it exists or joins a node to itself; returns true when added. */
function addEdge (edges: Map<string, Edge>, a: number, b: number): boolean {
  if (a === b) {
    return false
  }
  const low = Math.min(a, b)
  const high = Math.max(a, b)
  const key = `${low}-${high}`
  if (edges.has(key)) {
    return false
  }
  edges.set(key, [low, high])
  return true
}

/**
 * A connected random graph over `members` with an average degree of at least
 * `degree`: a random spanning tree, then random extra edges.
 */
function randomGraph (edges: Map<string, Edge>, members: number[], degree: number, random: SeededRandom): void {
  if (members.length < 2) {
    return
  }
  const order = random.shuffle(members)
  for (let i = 1; i < order.length; i++) {
    addEdge(edges, order[i] as number, order[random.below(i)] as number)
  }

  const maxEdges = members.length * (members.length - 1) / 2
  const target = Math.min(maxEdges, Math.ceil(members.length * degree / 2))
  let added = members.length - 1
  // Bounded: each attempt adds an edge with a probability of at least 1/2
  // while fewer than half of all possible edges exist, and the target
  // never asks for more than degree <= members - 1 allows.
  for (let attempt = 0; added < target && attempt < target * 50; attempt++) {
    if (addEdge(edges, members[random.below(members.length)] as number, members[random.below(members.length)] as number)) {
      added++
    }
  }
}

function fullGraph (edges: Map<string, Edge>, members: number[]): void {
  for (let i = 0; i < members.length; i++) {
    for (let j = i + 1; j < members.length; j++) {
      addEdge(edges, members[i] as number, members[j] as number)
    }
  }
}

/** Splits nodes 0..count-1 into `clusters` contiguous blocks of nearly equal size. */
export function clusterMembers (count: number, clusters: number): number[][] {
  const blocks: number[][] = Array.from({ length: clusters }, () => [])
  for (let node = 0; node < count; node++) {
    blocks[Math.floor(node * clusters / count)]?.push(node)
  }
  return blocks
}

/** Returns the edges of `topology` over nodes 0..count-1, sorted. */
export function buildEdges (topology: Topology, count: number, random: SeededRandom): Edge[] {
  const edges = new Map<string, Edge>()
  const all = Array.from({ length: count }, (_, i) => i)

  switch (topology.kind) {
    case 'full':
      fullGraph(edges, all)
      break
    case 'line':
    case 'ring':
      for (let i = 1; i < count; i++) {
        addEdge(edges, i - 1, i)
      }
      if (topology.kind === 'ring' && count > 2) {
        addEdge(edges, 0, count - 1)
      }
      break
    case 'star':
      for (const node of all) {
        addEdge(edges, topology.hub, node)
      }
      break
    case 'random':
      randomGraph(edges, all, topology.degree, random)
      break
    case 'clusters': {
      const blocks = clusterMembers(count, topology.count)
      for (const block of blocks) {
        if (topology.degree == null) {
          fullGraph(edges, block)
        } else {
          randomGraph(edges, block, topology.degree, random)
        }
      }
      // Bridges join neighbouring clusters in a ring, so one cut bridge does not split the fleet.
      const pairs = blocks.length === 2 ? 1 : blocks.length > 2 ? blocks.length : 0
      for (let c = 0; c < pairs; c++) {
        const left = blocks[c] as number[]
        const right = blocks[(c + 1) % blocks.length] as number[]
        for (let bridge = 0; bridge < topology.bridges; bridge++) {
          addEdge(edges, left[random.below(left.length)] as number, right[random.below(right.length)] as number)
        }
      }
      break
    }
  }

  return [...edges.values()].sort((a, b) => a[0] - b[0] || a[1] - b[1])
}

/** Chooses the peers a node that joins later connects to when its join event names none. */
export function joinPeers (topology: Topology, running: number[], random: SeededRandom): number[] {
  if (running.length === 0) {
    return []
  }
  const sorted = [...running].sort((a, b) => a - b)

  switch (topology.kind) {
    case 'full':
      return sorted
    case 'line':
      return [sorted[sorted.length - 1] as number]
    case 'ring':
      return [...new Set([sorted[0] as number, sorted[sorted.length - 1] as number])]
    case 'star':
      return sorted.includes(topology.hub) ? [topology.hub] : random.pick(sorted, 1)
    case 'random':
      return random.pick(sorted, Math.min(topology.degree, sorted.length))
    case 'clusters':
      return random.pick(sorted, Math.min(topology.degree ?? 3, sorted.length))
  }
}
