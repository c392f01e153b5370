/**
 * Applies one timeline event to the fleet and the network. The returned
 * sentence describes what happened, resolved against the running nodes:
 * which nodes a random pick chose, how many connections a cut reset. Pulls
 * run in the background, so a slow pull never delays the events after it,
 * and their outcome is reported through `note`.
 */
import { publishImage } from '../../node/agent/publish.js'
import { pullImage } from '../../node/agent/pull.js'
import { EventFailedError } from '../errors.js'
import { describeAction, formatLink, formatNodes } from './format.js'
import type { Fleet } from './fleet.js'
import type { HoldingTracker } from './holdings.js'
import type { ImageInfo } from './images.js'
import type { SimNode } from './sim-node.js'
import type { SimNetwork } from '../network/network.js'
import type { ScenarioEvent } from '../scenario/types.js'
import type { AbortOptions } from '@libp2p/interface'

export interface EventContext {
  fleet: Fleet
  network: SimNetwork
  holdings: HoldingTracker
  images: Map<string, ImageInfo>
  stopTimeoutMs: number
  /** Adds a line to the timeline for something that finished in the background. */
  note: (text: string) => void
  /** Background work the runner waits for before it stops the nodes. */
  background: Set<Promise<void>>
}

function requireRunning (nodes: SimNode[], action: string): SimNode[] {
  const stopped = nodes.filter(node => !node.running)
  if (stopped.length > 0) {
    throw new EventFailedError(`cannot ${action} on ${stopped.map(node => `${node.name} (${node.status})`).join(', ')}: only running nodes can`)
  }
  return nodes
}

function names (nodes: SimNode[]): string {
  return nodes.length === 0 ? 'no node' : `node${nodes.length > 1 ? 's' : ''} ${formatNodes(nodes.map(node => node.index))}`
}

/** Applies `event`; returns the timeline text, or throws EventFailedError naming what could not be done. */
export async function applyEvent (event: ScenarioEvent, context: EventContext, options: AbortOptions = {}): Promise<string> {
  const { fleet, network } = context
  const action = event.action

  switch (action.kind) {
    case 'subscribe':
    case 'unsubscribe': {
      const nodes = requireRunning(fleet.select(action.nodes), action.kind)
      await Promise.all(nodes.map(async node => {
        const subscriptions = node.agent?.context.subscriptions
        await (action.kind === 'subscribe' ? subscriptions?.subscribe(action.ref, options) : subscriptions?.unsubscribe(action.ref, options))
      }))
      return `${action.kind} ${names(nodes)} ${action.kind === 'subscribe' ? 'to' : 'from'} ${action.ref}`
    }
    case 'publish': {
      const agent = requireRunning([fleet.node(action.node)], 'publish')[0]?.agent
      const image = context.images.get(action.image)
      if (agent == null || image == null) {
        throw new EventFailedError(`cannot publish ${action.image} on node ${action.node}: the node has no agent or the image was not prepared`)
      }
      const result = await publishImage(agent.context, action.ref, image.source, options)
      return `publish ${action.image} as ${action.ref} on node ${action.node} (${result.digest.slice(0, 19)}, announced to ${result.announcedTo} peer(s))`
    }
    case 'pull': {
      const nodes = requireRunning(fleet.select(action.nodes), 'pull')
      for (const node of nodes) {
        const task = pullInBackground(node, action.ref, context)
        context.background.add(task)
        void task.finally(() => context.background.delete(task))
      }
      return `pull ${action.ref} on ${names(nodes)} (in the background)`
    }
    case 'partition': {
      const reset = network.partition(action.groups)
      return `${describeAction(action)} (${reset} connection end(s) reset)`
    }
    case 'cut': {
      const from = fleet.indices(action.from)
      const to = fleet.indices(action.to)
      const reset = network.cut(from, to, action.oneWay)
      return `cut nodes ${formatNodes(from)} ${action.oneWay ? '->' : '<->'} nodes ${formatNodes(to)} (${reset} connection end(s) reset)`
    }
    case 'heal':
      if (action.from == null || action.to == null) {
        network.heal()
        return 'heal all cuts'
      }
      network.heal(fleet.indices(action.from), fleet.indices(action.to))
      return `heal nodes ${formatNodes(fleet.indices(action.from))} <-> nodes ${formatNodes(fleet.indices(action.to))} (${network.cutPairs} directed pair(s) still cut)`
    case 'crash':
    case 'leave': {
      const nodes = requireRunning(fleet.select(action.nodes), action.kind)
      await Promise.all(nodes.map(async node => {
        context.holdings.detach(node.index)
        await (action.kind === 'crash' ? node.crash(context.stopTimeoutMs) : node.leave(context.stopTimeoutMs))
      }))
      return `${action.kind} ${names(nodes)}`
    }
    case 'restart': {
      const nodes = action.nodes.kind === 'all' ? fleet.nodes.filter(node => node.status === 'crashed') : fleet.select(action.nodes)
      for (const node of nodes) {
        await fleet.restart(node, options)
      }
      return `restart ${names(nodes)}`
    }
    case 'join': {
      const peers = action.peers == null ? undefined : fleet.select(action.peers)
      const joined = await fleet.join(action.count, peers, options)
      for (const ref of action.subscribe) {
        await Promise.all(joined.map(async node => { await node.agent?.context.subscriptions.subscribe(ref, options) }))
      }
      const links = joined.map(node => `${node.index} keeps ${formatNodes(node.keeps)}`).join('; ')
      return `join ${names(joined)} (${links})${action.subscribe.length > 0 ? `, subscribed to ${action.subscribe.join(', ')}` : ''}`
    }
    case 'link':
      network.addRule(action.rule)
      return `set ${formatLink(action.rule.params)} between nodes ${formatNodes(fleet.indices(action.rule.from))} and nodes ${formatNodes(fleet.indices(action.rule.to))}`
    case 'reset': {
      const nodes = fleet.select(action.nodes)
      const reset = network.reset(nodes.map(node => node.index))
      return `reset the connections of ${names(nodes)} (${reset} connection end(s))`
    }
  }
}

async function pullInBackground (node: SimNode, ref: string, context: EventContext): Promise<void> {
  const agent = node.agent
  if (agent == null) {
    return
  }
  try {
    const result = await pullImage(agent.context, ref)
    context.note(`node ${node.index} finished pulling ${ref} (${result.fetchedBlobs} blob(s) fetched)`)
  } catch (err: any) {
    context.note(`node ${node.index} failed to pull ${ref}: ${err.message}`)
  }
}
