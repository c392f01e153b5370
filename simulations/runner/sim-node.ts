/**
 * One simulated device: a data directory on disk, a datastore in memory that
 * outlives a crash, and the real agent started on them with the simulated
 * network's gater and protector. A crash resets the node's connections and
 * then stops the agent, so peers see resets rather than graceful closes. A
 * restart starts a new agent on the same directory and datastore, so the
 * node comes back with its identity, blobs and catalog.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPairFromSeed, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { logger } from '@libp2p/logger'
import { memory } from '@libp2p/memory'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { MemoryDatastore } from 'datastore-core'
import { Agent } from '../../node/agent/agent.js'
import { loadConfig, saveConfig } from '../../node/config/config.js'
import { IDENTITY_FILE_MODE } from '../../node/config/identity.js'
import { initDataDir } from '../../node/config/init.js'
import { dataDirPaths } from '../../node/config/paths.js'
import { writeFileAtomic } from '../../node/store/atomic-file.js'
import { EventFailedError, SimulationSetupError } from '../errors.js'
import { NodeTraffic } from '../network/traffic.js'
import { SeededRandom } from '../random.js'
import { addAgentStats, readAgentStats, type AgentStats } from './agent-stats.js'
import type { TrustConfig } from '../../node/catalog/trust.js'
import type { SimNetwork } from '../network/network.js'
import type { AbortOptions, PrivateKey } from '@libp2p/interface'

const log = logger('kilomesh:sim:node')

/**
 * Bytes of verified blobs each simulated agent keeps in memory. An agent's
 * default of 8 MiB, times hundreds of agents in one process, would hold
 * every layer of a rollout in memory. A micro image's manifest, config and
 * a small layer still fit.
 */
export const SIM_BLOB_CACHE_BYTES = 256 * 1024

export type NodeStatus = 'new' | 'starting' | 'running' | 'stopping' | 'crashed' | 'left' | 'stopped'

export interface SimNodeInit {
  index: number
  /** Folder that contains every node's data directory. */
  root: string
  /** Unique per run, so that two runs in one process never share a memory address. */
  runId: string
  transport: 'memory' | 'tcp'
  network: SimNetwork
  seed: number
  /** Options passed through to Agent.start. */
  agentOptions: { dht?: boolean, minConnections?: number }
  /** Wrap connections in the fault layer; only overhead measurements turn it off, and then cuts have no effect. */
  faultLayer: boolean
}

/** Derives node `index`'s identity key from the scenario seed. */
async function seededKey (seed: number, index: number): Promise<PrivateKey> {
  return generateKeyPairFromSeed('Ed25519', SeededRandom.fork(seed, `identity-${index}`).bytes(32))
}

/** Runs `task` but gives up waiting after `timeoutMs`, so one stuck agent cannot hang the run. */
async function withTimeout (task: Promise<void>, timeoutMs: number, what: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    await Promise.race([task, new Promise<void>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`${what} did not finish within ${timeoutMs} ms`)) }, timeoutMs)
    })])
  } finally {
    clearTimeout(timer)
  }
}

export class SimNode {
  readonly index: number
  readonly name: string
  readonly dir: string
  readonly datastore = new MemoryDatastore()
  readonly traffic = new NodeTraffic()
  peerId = ''
  status: NodeStatus = 'new'
  agent?: Agent
  /** Indices of the nodes this node keeps connected, as bootstrap peers. */
  keeps: number[] = []
  starts = 0
  crashes = 0
  /** Milliseconds each start took, for the metrics. */
  readonly startDurationsMs: number[] = []
  private listenAddress: string
  private dialAddressValue?: string
  private readonly detachers: Array<() => void> = []
  /** Counters of the agents that already stopped. */
  private stoppedStats: AgentStats = {}

  constructor (private readonly init: SimNodeInit) {
    this.index = init.index
    this.name = `node-${init.index}`
    this.dir = join(init.root, this.name)
    this.listenAddress = init.transport === 'memory' ? `/memory/${init.runId}-${init.index}` : '/ip4/127.0.0.1/tcp/0'
  }

  /** Address other nodes dial, with /p2p/PEER_ID; known before start on memory links, after the first start on TCP. */
  get dialAddress (): string | undefined {
    if (this.init.transport === 'memory') {
      return `${this.listenAddress}/p2p/${this.peerId}`
    }
    return this.dialAddressValue
  }

  get running (): boolean {
    return this.status === 'running'
  }

  /**
   * Creates the data directory with an identity derived from the seed (so
   * peer IDs, and the tie-breaks that depend on them, repeat between runs)
   * and writes the trust policy into config.json.
   */
  async prepare (trust: TrustConfig): Promise<void> {
    const paths = dataDirPaths(this.dir)
    const key = await seededKey(this.init.seed, this.index)
    this.peerId = peerIdFromPrivateKey(key).toString()
    this.init.network.register(this.index, this.peerId)

    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    await writeFileAtomic(paths.identity, privateKeyToProtobuf(key), { mode: IDENTITY_FILE_MODE })
    await initDataDir(this.dir)

    // A folder kept with --keep-data may be started as a real agent later,
    // which should then stay on loopback and send no mDNS multicast.
    const config = await loadConfig(paths.config)
    config.trust = trust
    config.registry = 'off'
    config.listen = ['/ip4/127.0.0.1/tcp/0']
    config.mdns = false
    await saveConfig(paths.config, config)
  }

  /** Returns the peer ID of a node's seeded identity without writing anything. */
  static async peerIdFor (seed: number, index: number): Promise<string> {
    return peerIdFromPrivateKey(await seededKey(seed, index)).toString()
  }

  /** Starts the agent; `bootstrap` contains the addresses of the kept nodes that are known now. */
  async start (bootstrap: string[], options: AbortOptions = {}): Promise<Agent> {
    if (this.status === 'running' || this.status === 'starting') {
      throw new EventFailedError(`${this.name} is already ${this.status}`)
    }
    options.signal?.throwIfAborted()

    this.status = 'starting'
    this.init.network.setDown(this.index, false)
    const startedAtMs = performance.now()
    try {
      this.agent = await Agent.start({
        dir: this.dir,
        listen: [this.listenAddress],
        bootstrap,
        transports: [this.init.transport === 'memory' ? memory() : tcp()],
        connectionGater: this.init.faultLayer ? this.init.network.gaterFor(this.index) : undefined,
        connectionProtector: this.init.faultLayer ? this.init.network.protectorFor(this.index) : undefined,
        controlApi: false,
        registry: 'off',
        // mDNS would multicast on the machine's real network.
        mdns: false,
        datastore: this.datastore,
        blobCacheBytes: SIM_BLOB_CACHE_BYTES,
        ...this.init.agentOptions
      })
    } catch (err: any) {
      this.status = this.starts === 0 ? 'new' : 'crashed'
      this.init.network.setDown(this.index, true)
      throw new SimulationSetupError(`${this.name} failed to start: ${err.message}`)
    }

    this.startDurationsMs.push(performance.now() - startedAtMs)
    this.starts++
    this.status = 'running'

    // A TCP node keeps its first port, so peers that keep its address find it after a restart.
    if (this.init.transport === 'tcp' && this.dialAddressValue == null) {
      this.dialAddressValue = this.agent.multiaddrs().find(address => address.includes('/tcp/'))
      if (this.dialAddressValue != null) {
        this.listenAddress = this.dialAddressValue.replace(/\/p2p\/.*$/, '')
      }
    }

    this.detachers.push(this.traffic.attach(this.agent.node))
    log('%s started as %s', this.name, this.peerId)
    return this.agent
  }

  /** Returns the agent's work counters, summed over every start. */
  agentStats (): AgentStats {
    return this.agent == null ? this.stoppedStats : addAgentStats(this.stoppedStats, readAgentStats(this.agent))
  }

  /** Adds a detach function to run when the agent stops, for listeners the runner attached. */
  onStop (detach: () => void): void {
    this.detachers.push(detach)
  }

  /** Resets every connection at once, then stops the agent: peers see resets, not goodbyes. */
  async crash (timeoutMs: number): Promise<void> {
    this.requireRunning('crash')
    this.crashes++
    this.init.network.setDown(this.index, true)
    await this.stopAgent('crashed', timeoutMs)
  }

  /** Stops the agent gracefully and takes the node out of the fleet for good. */
  async leave (timeoutMs: number): Promise<void> {
    this.requireRunning('leave')
    await this.stopAgent('left', timeoutMs)
    this.init.network.setDown(this.index, true)
  }

  /** Stops a running node at the end of the run. */
  async shutdown (timeoutMs: number): Promise<void> {
    if (this.status === 'running') {
      await this.stopAgent('stopped', timeoutMs)
    }
  }

  private requireRunning (action: string): void {
    if (this.status !== 'running') {
      throw new EventFailedError(`cannot ${action} ${this.name}: it is ${this.status}`)
    }
  }

  private async stopAgent (next: NodeStatus, timeoutMs: number): Promise<void> {
    this.status = 'stopping'
    this.detachers.splice(0).forEach(detach => { detach() })
    const agent = this.agent
    this.agent = undefined
    if (agent != null) {
      this.stoppedStats = addAgentStats(this.stoppedStats, readAgentStats(agent))
    }
    try {
      if (agent != null) {
        await withTimeout(agent.stop(), timeoutMs, `stopping ${this.name}`)
      }
    } catch (err: any) {
      log.error('%s did not stop cleanly: %e', this.name, err)
    } finally {
      this.status = next
    }
  }
}
