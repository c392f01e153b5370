/**
 * Judges expectations. An expectation is met when its condition holds at a
 * check that comes after every event scheduled at or before its deadline
 * has been applied, and no later than the deadline; it fails when the
 * deadline passes first. The failure names the nodes that fall short and
 * what each of them has instead.
 */
import { formatNodes } from './format.js'
import { imageLabel, type ImageInfo } from './images.js'
import type { HoldingTracker } from './holdings.js'
import type { SimNode } from './sim-node.js'
import type { Expectation, ExpectationCheck } from '../scenario/types.js'

export type ExpectationStatus = 'pending' | 'met' | 'failed'

export interface ExpectationState {
  expectation: Expectation
  text: string
  status: ExpectationStatus
  /** Time after the timeline's start when it was met or judged failed. */
  decidedAtMs?: number
  /** Why it failed: the nodes that fall short and what they have. */
  reason?: string
}

/** At most this many nodes are described one by one in a failure message. */
const MAX_LISTED_NODES = 8

export interface CheckContext {
  nodes: SimNode[]
  holdings: HoldingTracker
  images: Map<string, ImageInfo>
}

/** Returns null when the check holds, else a sentence saying why it does not. */
export function evaluate (check: ExpectationCheck, context: CheckContext): string | null {
  const running = context.nodes.filter(node => node.running)

  if (check.kind === 'converged') {
    if (running.length === 0) {
      return 'no node is running'
    }
    const byDigest = new Map<string, number[]>()
    for (const node of running) {
      const label = imageLabel(context.images, context.holdings.holding(node.index, check.ref).digest)
      byDigest.set(label, [...(byDigest.get(label) ?? []), node.index])
    }
    if (byDigest.size === 1 && !byDigest.has('nothing')) {
      return null
    }
    if (byDigest.size === 1) {
      return `no running node resolves ${check.ref} yet`
    }
    return `the running nodes disagree: ${[...byDigest].map(([label, nodes]) => `nodes ${formatNodes(nodes)} resolve it to ${label}`).join('; ')}`
  }

  const image = context.images.get(check.image)
  if (image == null) {
    return `image ${check.image} is not defined`
  }

  const checked: SimNode[] = []
  const short: string[] = []
  if (check.kind === 'each') {
    for (const index of check.nodes) {
      const node = context.nodes[index]
      if (node?.running !== true) {
        short.push(`node ${index} is ${node?.status ?? 'not created yet'}`)
      } else {
        checked.push(node)
      }
    }
  } else {
    checked.push(...running)
    if (running.length === 0) {
      return 'no node is running'
    }
  }

  let failing = short.length
  for (const node of checked) {
    const holding = context.holdings.holding(node.index, check.ref)
    const resolves = holding.digest === image.digest
    if (resolves && (!check.pulled || holding.pulled)) {
      continue
    }
    failing++
    if (short.length < MAX_LISTED_NODES) {
      const has = holding.digest == null ? 'does not know the tag' : `resolves it to ${imageLabel(context.images, holding.digest)}${holding.pulled ? ' (pulled)' : ' (not all blobs yet)'}`
      short.push(`node ${node.index} ${has}`)
    }
  }

  if (failing === 0) {
    return null
  }
  const total = check.kind === 'each' ? check.nodes.length : checked.length
  const more = failing > short.length ? `, and ${failing - short.length} more` : ''
  return `${failing} of ${total} node(s) fall short: ${short.join('; ')}${more}`
}
