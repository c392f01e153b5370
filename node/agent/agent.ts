/**
 * The kilomesh agent: one device's libp2p node, content store, catalog of
 * tags, blob fetcher and announcer, with the control API and the OCI
 * registry API in front of them. `Agent.start` wires and starts everything;
 * `stop` undoes it in reverse order.
 */
import { constants } from 'node:fs'
import { access, mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { LevelDatastore } from 'datastore-level'
import { PeerCacheDatastore } from '../net/peer-cache-datastore.js'
import { Catalog } from '../catalog/catalog.js'
import { TrustPolicy } from '../catalog/trust.js'
import { loadConfig, parseBootstrapAddress, parseMultiaddrValue, parseRegistryAddress, type AgentConfig } from '../config/config.js'
import { AgentAlreadyRunningError, DataDirNotWritableError, InvalidConfigError } from '../config/errors.js'
import { loadIdentity } from '../config/identity.js'
import { dataDirPaths, type DataDirPaths } from '../config/paths.js'
import { BlobFetcher } from '../fetch/fetcher.js'
import { PeerPenalties } from '../fetch/penalties.js'
import { TagAnnouncer } from '../net/announce.js'
import { BlobServer } from '../net/blob-server.js'
import { ConnectivityKeeper } from '../net/connectivity.js'
import { BlobProviders } from '../net/providers.js'
import { createKilomeshNode, type KilomeshLibp2p, type NodeInit } from '../net/libp2p.js'
import { handleResolve } from '../net/resolve.js'
import { loadSwarmKey, privateNetworkProtector } from '../net/swarm-key.js'
import { catalogSync, type CatalogSync } from '../sync/catalog-sync.js'
import { BlobStore } from '../store/blob-store.js'
import { OciLayout } from '../store/layout.js'
import { isProcessAlive, readAgentFile, removeAgentFile, writeAgentFile, type AgentFile } from './agent-file.js'
import { SubscriptionManager } from './subscriptions.js'
import { SyncRelay } from './sync-relay.js'
import { ListenFailedError } from './errors.js'
import { explainListenFailure, findUnboundAddresses, splitListenAddresses } from './listen.js'
import { PeerBlocklist } from './test-hooks.js'
import type { PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

const log = logger('kilomesh:agent')

/**
 * Returns true for a listen address other devices on a LAN could dial. mDNS
 * announces listen addresses, so an agent listening only on loopback or
 * in-memory addresses (tests, the simulator) has nothing to announce and
 * sends no multicast at all.
 */
function isLanAddress (address: string): boolean {
  return !/^\/(ip4\/127\.|ip6\/::1\/|memory\/)/.test(address)
}

export interface AgentOptions {
  /** Data directory, created by `kilomesh init`. */
  dir: string
  /** Listen multiaddrs; replace the configured ones when given. */
  listen?: string[]
  /** Bootstrap multiaddrs; added to the configured ones. */
  bootstrap?: string[]
  /** HOST:PORT or "off"; replaces the configured registry address when given. */
  registry?: string
  /** Discover peers on the LAN with mDNS; replaces config.json's `mdns` (default true). */
  mdns?: boolean
  /** Run the Kademlia DHT. @default true */
  dht?: boolean
  /** Connections the agent keeps by dialling known peers; replaces config.json's `minConnections` (default 4). */
  minConnections?: number
  /** Transports, for the simulator's in-memory links; TCP when omitted. */
  transports?: NodeInit['transports']
  connectionGater?: NodeInit['connectionGater']
  connectionProtector?: NodeInit['connectionProtector']
  /**
   * Private network key file (`kilomesh keygen`); replaces config.json's
   * `swarmKey`, a path relative to the data directory. With a key, the agent
   * connects only to peers that hold the same key.
   */
  swarmKey?: string
  /** Storage quota in bytes for garbage collection; replaces config.json's `maxStorageBytes` (default: no quota). */
  maxStorageBytes?: number
  /** Test only: shifts the catalog's clock by this many ms, to test devices with wrong clocks. */
  clockOffsetMs?: number
  /** Test only: enables the control routes that block and unblock peers (test-hooks.ts). */
  testHooks?: boolean
  /** Write agent.json and serve the control socket; the simulator turns this off. */
  controlApi?: boolean
  /**
   * Bytes of verified blobs the store keeps in memory to serve them
   * (default MAX_CACHE_BYTES, 8 MiB). The simulator, which runs hundreds of
   * agents in one process, passes less.
   */
  blobCacheBytes?: number
  /**
   * Datastore for the catalog and libp2p's state; a LevelDB in DIR/datastore
   * when omitted. The simulator passes one that outlives a simulated crash.
   * The agent does not close a datastore it was given.
   */
  datastore?: Datastore
}

/** Everything the agent's feature modules (publish, pull, status) work with. */
export interface AgentContext {
  dir: string
  paths: DataDirPaths
  config: AgentConfig
  privateKey: PrivateKey
  peerId: string
  node: KilomeshLibp2p
  store: BlobStore
  layout: OciLayout
  catalog: Catalog
  fetcher: BlobFetcher
  penalties: PeerPenalties
  announcer: TagAnnouncer
  blobServer: BlobServer
  providers: BlobProviders
  connectivity: ConnectivityKeeper
  /** Subscribed tags, their automatic pulls, pins, local rollbacks and garbage collection. */
  subscriptions: SubscriptionManager
  startedAtMs: number
  /** The absolute path of the swarm key file when the agent is on a private network. */
  swarmKeyPath?: string
  /** The catalog sync service, which reconciles catalogs with peers. */
  sync: CatalogSync
  /** Peers cut off by the test-only control routes; present only with `testHooks`. */
  blocklist?: PeerBlocklist
}

/**
 * Returns the connection protector: the caller's, with the private network
 * key of `--swarm-key` or config.json's `swarmKey` applied first when one is
 * set, and the key file's absolute path.
 */
async function connectionProtector (options: AgentOptions, config: AgentConfig): Promise<{ protector: NodeInit['connectionProtector'], swarmKeyPath?: string }> {
  const configured = config.swarmKey
  if (configured != null && typeof configured !== 'string') {
    throw new InvalidConfigError(`"swarmKey" in ${dataDirPaths(options.dir).config} must be the path of a swarm key file, got ${JSON.stringify(configured)}`)
  }

  const path = options.swarmKey ?? configured
  if (path == null || path === '') {
    return { protector: options.connectionProtector }
  }

  const swarmKeyPath = resolve(options.dir, path)
  const swarmKey = await loadSwarmKey(swarmKeyPath)
  log('private network: only peers with the swarm key %s can connect', swarmKeyPath)
  return { protector: privateNetworkProtector(swarmKey, options.connectionProtector), swarmKeyPath }
}

export class Agent {
  /** Registry address actually bound, or null when the registry is off. */
  registryAddress: string | null = null
  /** Messages for the listen addresses left out, because the TCP transport cannot use them or they did not bind. */
  skippedListen: string[] = []
  private readonly stoppers: Array<() => Promise<void>> = []
  private stopping?: Promise<void>

  private constructor (readonly context: AgentContext, private readonly options: AgentOptions) {}

  get peerId (): string {
    return this.context.peerId
  }

  get node (): KilomeshLibp2p {
    return this.context.node
  }

  /** Addresses other agents can dial, each ending in /p2p/PEER_ID. */
  multiaddrs (): string[] {
    return this.context.node.getMultiaddrs().map(address => address.toString())
  }

  /** Starts an agent on an initialised data directory. */
  static async start (options: AgentOptions): Promise<Agent> {
    const startedAtMs = Date.now()
    const paths = dataDirPaths(options.dir)
    const config = await loadConfig(paths.config)
    const privateKey = await loadIdentity(paths.identity)
    const peerId = peerIdFromPrivateKey(privateKey).toString()

    const originOf = (i: number): string => options.listen != null ? `listen address ${i + 1}` : `"listen[${i}]" in ${paths.config}`
    let listen = (options.listen ?? config.listen).map((address, i) => parseMultiaddrValue(address, originOf(i)))
    // Tests and the simulator bring other transports and their own addresses.
    const tcpOnly = options.transports == null
    let skippedListen: string[] = []
    if (tcpOnly) {
      ({ usable: listen, skipped: skippedListen } = splitListenAddresses(listen, peerId, originOf))
    }
    const bootstrap = [...config.bootstrap, ...(options.bootstrap ?? []).map((address, i) => parseBootstrapAddress(address, `bootstrap address ${i + 1}`))]
    const registry = parseRegistryAddress(options.registry ?? config.registry)
    const { protector, swarmKeyPath } = await connectionProtector(options, config)
    const blocklist = options.testHooks === true ? new PeerBlocklist() : undefined

    // The LevelDB lock keeps a second agent off the data directory, so it is
    // taken before anything there changes: the store's start clears tmp/.
    // A live pid in agent.json proves nothing, because after a crash and a
    // reboot another process may have that pid.
    let datastore: Datastore
    let closeDatastore = async (): Promise<void> => {}
    if (options.datastore != null) {
      datastore = options.datastore
      const running = options.controlApi === false ? undefined : await readAgentFile(paths.agentFile)
      if (running != null && running.pid !== process.pid && isProcessAlive(running.pid)) {
        throw new AgentAlreadyRunningError(`an agent (pid ${running.pid}) already runs on ${options.dir}; stop it first or use another --dir`)
      }
    } else {
      await requireWritable(options.dir)
      const level = await openLevelDatastore(paths.datastore, paths.agentFile, options.dir)
      const cached = new PeerCacheDatastore(level)
      await cached.open()
      datastore = cached
      closeDatastore = async () => {
        await cached.close()
        await level.close()
      }
    }

    const store = new BlobStore(options.dir, { cacheBytes: options.blobCacheBytes })
    const layout = new OciLayout(options.dir)
    try {
      await store.init()
      await layout.init()
    } catch (err) {
      await closeDatastore()
      throw err
    }

    const trust = new TrustPolicy({ localPeerId: peerId, config: config.trust })
    const clockOffsetMs = options.clockOffsetMs ?? 0
    const catalog = new Catalog({ datastore }, { trust, now: clockOffsetMs === 0 ? undefined : () => Date.now() + clockOffsetMs })
    const subscriptions = new SubscriptionManager({ paths, config, store, layout, catalog }, { maxStorageBytes: options.maxStorageBytes })
    await catalog.start()

    const node = await createKilomeshNode({
      privateKey,
      listen,
      datastore,
      transports: options.transports,
      connectionGater: blocklist?.gater(options.connectionGater) ?? options.connectionGater,
      connectionProtector: protector,
      services: { catalogSync: catalogSync({ catalog }) },
      dht: options.dht,
      mdns: (options.mdns ?? config.mdns !== false) && listen.some(isLanAddress)
    })

    if (node.getMultiaddrs().length === 0 && listen.length > 0) {
      await node.stop()
      await catalog.stop()
      await closeDatastore()
      throw new ListenFailedError(tcpOnly ? await explainListenFailure(listen) : `could not listen on any of ${listen.join(', ')}`)
    }
    if (tcpOnly) {
      skippedListen.push(...await findUnboundAddresses(listen, node.getMultiaddrs().map(address => address.toString())))
    }

    const penalties = new PeerPenalties()
    const fetcher = new BlobFetcher(node, store, penalties)
    const blobServer = new BlobServer(node, store, undefined, fetcher)
    await blobServer.start()
    await handleResolve(node, catalog)
    const announcer = new TagAnnouncer(node, catalog)
    announcer.start()
    const providers = new BlobProviders(node, store, { isFetched: digest => fetcher.isFetching(digest) })
    await providers.start()
    const connectivity = new ConnectivityKeeper(node, options.minConnections ?? config.minConnections)
    connectivity.start(bootstrap)

    const sync = node.services.catalogSync as CatalogSync
    const relay = new SyncRelay(node, sync)
    relay.start()
    const context: AgentContext = { dir: options.dir, paths, config, privateKey, peerId, node, store, layout, catalog, fetcher, penalties, announcer, blobServer, providers, connectivity, subscriptions, startedAtMs, swarmKeyPath, sync, blocklist }
    const agent = new Agent(context, options)
    agent.skippedListen = skippedListen

    agent.stoppers.push(closeDatastore)
    agent.stoppers.push(async () => { await catalog.stop() })
    agent.stoppers.push(async () => { await node.stop() })
    agent.stoppers.push(async () => { await blobServer.stop() })
    agent.stoppers.push(async () => { announcer.stop() })
    agent.stoppers.push(async () => { connectivity.stop() })
    agent.stoppers.push(async () => { relay.stop() })
    agent.stoppers.push(async () => { providers.stop() })
    agent.stoppers.push(async () => { fetcher.sources.stop() })
    agent.stoppers.push(async () => { await subscriptions.stop() })

    try {
      await subscriptions.start(context)
      await agent.startInterfaces(registry)
    } catch (err) {
      await agent.stop()
      throw err
    }

    log('agent %s started in %d ms on %s', peerId, Date.now() - startedAtMs, agent.multiaddrs().join(', '))
    return agent
  }

  /** Starts the registry and control APIs, then writes agent.json. */
  private async startInterfaces (registry: { host: string, port: number } | null): Promise<void> {
    if (registry != null) {
      const { startRegistry } = await import('./registry-backend.js')
      const server = await startRegistry(this.context, registry)
      this.registryAddress = server.address
      this.stoppers.push(async () => { await server.stop() })
    }

    if (this.options.controlApi === false) {
      return
    }

    const { ControlServer } = await import('../control/server.js')
    const control = new ControlServer(this)
    await control.start()
    this.stoppers.push(async () => { await control.stop() })

    const content: AgentFile = {
      peerId: this.peerId,
      multiaddrs: this.multiaddrs(),
      control: `unix:${this.context.paths.controlSocket}`,
      registry: this.registryAddress,
      pid: process.pid
    }
    await writeAgentFile(this.context.paths.agentFile, content)
    this.stoppers.push(async () => { await removeAgentFile(this.context.paths.agentFile) })
  }

  /** Stops everything the agent started, newest first. Safe to call more than once. */
  async stop (): Promise<void> {
    this.stopping ??= (async () => {
      for (const stop of this.stoppers.reverse()) {
        try {
          await stop()
        } catch (err: any) {
          log.error('error while stopping: %e', err)
        }
      }
      log('agent %s stopped', this.peerId)
    })()
    return this.stopping
  }
}

/**
 * Throws DataDirNotWritableError when the agent cannot write to `dir`. Every
 * later step writes there, and their own errors would name a symptom (a
 * missing datastore folder, a locked database) instead of the cause.
 */
async function requireWritable (dir: string): Promise<void> {
  try {
    await access(dir, constants.W_OK)
  } catch (err: any) {
    throw new DataDirNotWritableError(`data directory ${dir} is not writable (${err.code as string ?? err.message as string}): remount it read-write or give the agent's user write access, or pass another --dir; its contents are intact`)
  }
}

/**
 * Opens the data directory's LevelDB, which only one process can hold.
 * Throws AgentAlreadyRunningError when another process holds its lock.
 */
async function openLevelDatastore (path: string, agentFile: string, dir: string): Promise<LevelDatastore> {
  await mkdir(path, { recursive: true })
  const level = new LevelDatastore(path)
  try {
    // Opened through its database, because LevelDatastore.open() turns the
    // cause (such as LEVEL_LOCKED) into a bare "Database failed to open".
    await level.db.open({ createIfMissing: true, compression: false })
  } catch (err: any) {
    if (err.cause?.code === 'LEVEL_LOCKED') {
      const running = await readAgentFile(agentFile).catch(() => undefined)
      const pid = running == null ? '' : ` (agent.json names pid ${running.pid})`
      throw new AgentAlreadyRunningError(`another agent already runs on ${dir}${pid}: its datastore ${path} is locked; stop that agent first or use another --dir`)
    }
    // classic-level reports a permission failure as LEVEL_IO_ERROR, with
    // the system's words in the message.
    const code = err.cause?.code ?? err.code
    const message = String(err.cause?.message ?? err.message)
    if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM' || /Permission denied|Read-only file system/i.test(message)) {
      throw new DataDirNotWritableError(`could not open the datastore ${path} (${message}): make the data directory and its datastore folder writable by the agent's user; its contents are intact`)
    }
    throw new Error(`could not open the datastore ${path}: ${err.cause?.message ?? err.message}; if another program changed it, restore it from a backup or remove the folder (the agent rebuilds its DHT and peer records, but loses its catalog of tags)`)
  }
  await level.open()
  return level
}
