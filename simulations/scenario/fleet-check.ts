/**
 * Checks that the timeline only names nodes that exist when each event
 * happens: joins add nodes in time order, so an event that names node 13
 * before the join that creates it is an error in the file, not at run time.
 */
import { child, invalid, type FieldPath } from './values.js'
import type { EventAction, Expectation, LinkRule, NodeSelector, ScenarioEvent } from './types.js'

function checkIndices (indices: number[], count: number, at: FieldPath, when: string): void {
  const bad = indices.find(index => index >= count)
  if (bad !== undefined) {
    throw invalid(at, `node ${bad} does not exist ${when}, when the fleet has nodes 0 to ${count - 1}`, `use indices from 0 to ${count - 1}, or add a join event before it`)
  }
}

function checkSelector (selector: NodeSelector | undefined, count: number, at: FieldPath, when: string): void {
  if (selector == null) {
    return
  }
  if (selector.kind === 'list') {
    checkIndices(selector.indices, count, at, when)
  }
  if (selector.kind === 'random' && selector.from != null) {
    checkIndices(selector.from, count, child(at, 'from'), when)
  }
}

/** Checks the node indices of one action against the node count at its time. */
function checkAction (action: EventAction, count: number, at: FieldPath, when: string): void {
  switch (action.kind) {
    case 'publish':
      checkIndices([action.node], count, child(at, 'node'), when)
      break
    case 'partition':
      action.groups.forEach((group, i) => { checkIndices(group, count, child(at, i), when) })
      break
    case 'cut':
    case 'heal':
      checkSelector(action.from, count, child(at, 'from'), when)
      checkSelector(action.to, count, child(at, 'to'), when)
      break
    case 'join':
      checkSelector(action.peers, count, child(at, 'peers'), when)
      break
    case 'link':
      checkSelector(action.rule.from, count, child(at, 'from'), when)
      checkSelector(action.rule.to, count, child(at, 'to'), when)
      break
    default:
      checkSelector(action.nodes, count, child(at, 'nodes'), when)
  }
}

/**
 * Walks the sorted events, checks every node index and every image name, and
 * returns the node count after the last join.
 */
export function checkFleet (events: ScenarioEvent[], expectations: Expectation[], initialNodes: number, images: Record<string, string>, file: string): number {
  let count = initialNodes

  for (const event of events) {
    const at: FieldPath = { file, path: `${event.source}.${event.action.kind}` }
    checkAction(event.action, count, at, `at ${event.atMs} ms`)

    if (event.action.kind === 'publish' && images[event.action.image] == null) {
      const names = Object.keys(images)
      throw invalid(child(at, 'image'), `image ${JSON.stringify(event.action.image)} is not defined`, names.length === 0 ? 'add it under images, such as images: { httpd-v1: test/fixtures/micro-httpd:v1 }' : `use one of: ${names.join(', ')}, or add it under images`)
    }
    if (event.action.kind === 'join') {
      count += event.action.count
    }
  }

  for (const expectation of expectations) {
    const at: FieldPath = { file, path: `expect[${expectation.index}]` }
    const check = expectation.check
    if (check.kind === 'each') {
      checkIndices(check.nodes, count, child(at, 'each'), 'after the last join')
    }
    if (check.kind !== 'converged' && images[check.image] == null) {
      throw invalid(child(child(at, check.kind), 'image'), `image ${JSON.stringify(check.image)} is not defined`, `use one of: ${Object.keys(images).join(', ')}`)
    }
  }
  return count
}

/**
 * Checks the node indices of the top-level link rules. A rule may name
 * nodes that a join adds later, so the limit is the fleet after the last join.
 */
export function checkLinkRules (rules: LinkRule[], maxNodes: number, file: string): void {
  rules.forEach((rule, i) => {
    const at: FieldPath = { file, path: `links[${i}]` }
    checkSelector(rule.from, maxNodes, child(at, 'from'), 'after the last join')
    checkSelector(rule.to, maxNodes, child(at, 'to'), 'after the last join')
  })
}
