/**
 * The simulated fleet: every node of the run, the links each one keeps, and
 * the operations events perform on them (start in batches, crash, restart,
 * leave, join). Node selectors from the scenario are resolved here, against
 * the nodes running at that moment.
 */
import { logger } from '@libp2p/logger'
import { EventFailedError, SimulationSetupError } from '../errors.js'
import { buildEdges, joinPeers } from '../topology.js'
import { SimNode, type SimNodeInit } from './sim-node.js'
import type { TrustConfig } from '../../node/catalog/trust.js'
import type { SimNetwork } from '../network/network.js'
import type { SeededRandom } from '../random.js'
import type { NodeSelector, Scenario } from '../scenario/types.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:sim:fleet')

export interface FleetInit {
  scenario: Scenario
  network: SimNetwork
  root: string
  runId: string
  /** Draws for topology and for `random` selectors, forked from the seed. */
  topologyRandom: SeededRandom
  choiceRandom: SeededRandom
  /** Called after every start of a node, for listeners the runner attaches. */
  onStarted: (node: SimNode) => void
  faultLayer: boolean
}

export class Fleet {
  readonly nodes: SimNode[] = []
  private trust: TrustConfig = { mode: 'any' }
  /** Addresses given to each node's current agent to keep connected, by node index. */
  private readonly kept = new Map<number, Set<string>>()

  constructor (private readonly init: FleetInit) {}

  running (): SimNode[] {
    return this.nodes.filter(node => node.running)
  }

  node (index: number): SimNode {
    const node = this.nodes[index]
    if (node == null) {
      throw new EventFailedError(`node ${index} does not exist; the fleet has nodes 0 to ${this.nodes.length - 1}`)
    }
    return node
  }

  /** Resolves a selector; `all` and `random` choose among the running nodes. */
  select (selector: NodeSelector): SimNode[] {
    switch (selector.kind) {
      case 'all':
        return this.running()
      case 'list':
        return selector.indices.map(index => this.node(index))
      case 'random': {
        const pool = this.running().filter(node => selector.from == null || selector.from.includes(node.index))
        if (pool.length < selector.count) {
          throw new EventFailedError(`cannot pick ${selector.count} random nodes: only ${pool.length} of the candidates are running`)
        }
        return this.init.choiceRandom.pick(pool, selector.count).sort((a, b) => a.index - b.index)
      }
    }
  }

  /** Resolves a selector of a cut or link rule to indices: `all` means every node that exists now. */
  indices (selector: NodeSelector): number[] {
    return selector.kind === 'all' ? this.nodes.map(node => node.index) : this.select(selector).map(node => node.index)
  }

  /** Creates the initial nodes, gives them the topology's links and starts them in batches. */
  async startInitial (options: AbortOptions = {}): Promise<void> {
    const { scenario } = this.init
    const peerIds: string[] = []
    for (let index = 0; index < scenario.nodes; index++) {
      peerIds.push(await SimNode.peerIdFor(scenario.seed, index))
    }
    const publishers = scenario.trust.publishers.map(index => ({ peerId: peerIds[index] as string, repository: '*' }))
    this.trust = { mode: scenario.trust.mode, entries: publishers }

    for (let index = 0; index < scenario.nodes; index++) {
      this.nodes.push(await this.createNode(index))
    }
    for (const [low, high] of buildEdges(scenario.topology, scenario.nodes, this.init.topologyRandom)) {
      this.node(high).keeps.push(low)
    }

    await this.startBatched(this.nodes, options)
  }

  /** Adds `count` nodes that keep links to `peers` (or to peers the topology chooses) and starts them. */
  async join (count: number, peers: SimNode[] | undefined, options: AbortOptions = {}): Promise<SimNode[]> {
    const joined: SimNode[] = []
    for (let i = 0; i < count; i++) {
      const node = await this.createNode(this.nodes.length)
      const targets = peers?.map(peer => peer.index) ?? joinPeers(this.init.scenario.topology, this.running().map(running => running.index), this.init.topologyRandom)
      node.keeps.push(...targets.filter(target => target !== node.index))
      this.nodes.push(node)
      joined.push(node)
    }
    await this.startBatched(joined, options)
    return joined
  }

  /** Starts a crashed node again on its data directory and datastore. */
  async restart (node: SimNode, options: AbortOptions = {}): Promise<void> {
    if (node.status !== 'crashed') {
      throw new EventFailedError(`cannot restart ${node.name}: it is ${node.status}, and only crashed nodes restart (join adds new nodes)`)
    }
    await this.startOne(node, options)
  }

  /** Stops every running node, a batch at a time. */
  async shutdown (timeoutMs: number): Promise<void> {
    const running = this.running()
    const batch = this.init.scenario.run.startBatchSize * 2
    for (let i = 0; i < running.length; i += batch) {
      await Promise.all(running.slice(i, i + batch).map(async node => { await node.shutdown(timeoutMs) }))
    }
  }

  /** Waits until every running node is connected to every running node it keeps; returns the links still missing. */
  async waitForLinks (timeoutMs: number, options: AbortOptions = {}): Promise<string[]> {
    const deadline = performance.now() + timeoutMs
    let missing = this.missingLinks()
    while (missing.length > 0 && performance.now() < deadline) {
      options.signal?.throwIfAborted()
      await new Promise(resolve => setTimeout(resolve, 50))
      missing = this.missingLinks()
    }
    return missing
  }

  private missingLinks (): string[] {
    const missing: string[] = []
    for (const node of this.running()) {
      for (const target of node.keeps) {
        const peer = this.nodes[target]
        if (peer?.running === true && node.agent?.node.getConnections().some(connection => connection.remotePeer.toString() === peer.peerId) !== true) {
          missing.push(`${node.index}-${target}`)
        }
      }
    }
    return missing
  }

  private async createNode (index: number): Promise<SimNode> {
    const init: SimNodeInit = {
      index,
      root: this.init.root,
      runId: this.init.runId,
      transport: this.init.scenario.transport,
      network: this.init.network,
      seed: this.init.scenario.seed,
      agentOptions: this.init.scenario.agent,
      faultLayer: this.init.faultLayer
    }
    const node = new SimNode(init)
    await node.prepare(this.trust)
    return node
  }

  private async startBatched (nodes: SimNode[], options: AbortOptions): Promise<void> {
    const size = this.init.scenario.run.startBatchSize
    for (let i = 0; i < nodes.length; i += size) {
      const batch = nodes.slice(i, i + size)
      const results = await Promise.allSettled(batch.map(async node => { await this.startOne(node, options) }))
      const failed = results.find(result => result.status === 'rejected')
      if (failed != null) {
        throw failed.reason instanceof SimulationSetupError ? failed.reason : new SimulationSetupError(String(failed.reason))
      }

      // On TCP a peer's address is known only once it has started, which may
      // be later in the same batch: hand the new addresses over now.
      for (const node of batch) {
        this.keepKnownLinks(node)
      }
    }
  }

  private async startOne (node: SimNode, options: AbortOptions): Promise<void> {
    const known = this.knownAddresses(node)
    this.kept.set(node.index, new Set(known))
    await node.start(known, options)
    this.init.onStarted(node)
    this.keepKnownLinks(node)
    log('%s keeps links to %s', node.name, node.keeps.join(', ') || 'no node')
  }

  private knownAddresses (node: SimNode): string[] {
    return node.keeps.map(index => this.nodes[index]?.dialAddress).filter((address): address is string => address != null)
  }

  private keepKnownLinks (node: SimNode): void {
    const kept = this.kept.get(node.index) ?? new Set<string>()
    for (const address of this.knownAddresses(node)) {
      if (!kept.has(address)) {
        kept.add(address)
        node.agent?.context.connectivity.keep(address)
      }
    }
  }
}
