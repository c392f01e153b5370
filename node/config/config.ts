/**
 * The agent's configuration file, `config.json` in the data directory.
 * Flags given to `kilomesh agent` override it for one run; commands that
 * change settings (subscribe, trust) rewrite it, keeping keys they do not know.
 */
import { readFile } from 'node:fs/promises'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { parseTrustConfig } from '../catalog/trust.js'
import { DEFAULT_MIN_CONNECTIONS } from '../net/constants.js'
import { writeFileAtomic } from '../store/atomic-file.js'
import { InvalidConfigError, NotInitializedError } from './errors.js'

/** Default libp2p listen addresses: every IPv4 and IPv6 interface, TCP port 4001. */
export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/4001', '/ip6/::/tcp/4001']

/** Default address of the OCI registry API. */
export const DEFAULT_REGISTRY = '127.0.0.1:5000'

export interface AgentConfig {
  /** libp2p listen multiaddrs. */
  listen: string[]
  /** Multiaddrs, each ending in /p2p/PEER_ID, dialled at start and kept connected. */
  bootstrap: string[]
  /** HOST:PORT of the OCI registry API, or "off". */
  registry: string
  /** Discover peers on the LAN with mDNS. */
  mdns: boolean
  /** Connections to keep by dialling peers the agent has known. */
  minConnections: number
  /** Any other keys, kept as they are when the file is rewritten. */
  [key: string]: unknown
}

/**
 * Keys of config.json that the agent reads. Others are kept when the file is
 * rewritten, for a newer version of kilomesh, but nothing reads them.
 */
export const KNOWN_CONFIG_KEYS: readonly string[] = ['listen', 'bootstrap', 'registry', 'mdns', 'minConnections', 'subscriptions', 'holds', 'trust', 'maxStorageBytes', 'swarmKey', 'registryTls']

/** Returns the keys of `config` that no part of the agent reads, such as a misspelt setting. */
export function unknownConfigKeys (config: AgentConfig): string[] {
  return Object.keys(config).filter(key => !KNOWN_CONFIG_KEYS.includes(key))
}

/** Returns a fresh configuration with the defaults. */
export function defaultConfig (): AgentConfig {
  return { listen: [...DEFAULT_LISTEN], bootstrap: [], registry: DEFAULT_REGISTRY, mdns: true, minConnections: DEFAULT_MIN_CONNECTIONS }
}

/** Checks a multiaddr from a flag or the config file; `origin` names where it came from in errors. */
export function parseMultiaddrValue (value: unknown, origin: string): string {
  if (typeof value !== 'string') {
    throw new InvalidConfigError(`${origin} must be a multiaddr string, got ${JSON.stringify(value)}`)
  }

  try {
    multiaddr(value)
  } catch (err: any) {
    throw new InvalidConfigError(`${origin} ${JSON.stringify(value)} is not a valid multiaddr (${err.message}); use a form such as /ip4/127.0.0.1/tcp/4001`)
  }
  return value
}

/** Checks a bootstrap multiaddr: it must name the peer with /p2p/PEER_ID so the dial can be authenticated. */
export function parseBootstrapAddress (value: unknown, origin: string): string {
  const address = parseMultiaddrValue(value, origin)
  const peer = multiaddr(address).getComponents().find(component => component.name === 'p2p')
  if (peer == null) {
    throw new InvalidConfigError(`${origin} ${JSON.stringify(address)} does not end in /p2p/PEER_ID; copy the full address from "kilomesh status" on that device`)
  }

  // A peer ID that does not parse would be dialled, and fail, forever.
  try {
    peerIdFromString(peer.value ?? '')
  } catch (err: any) {
    throw new InvalidConfigError(`${origin} ${JSON.stringify(address)} names an invalid peer ID ${JSON.stringify(peer.value)} (${err.message as string}); copy the full address from "kilomesh status" on that device`)
  }
  return address
}

/** Parses "HOST:PORT" or "off" for the registry; returns null for "off". */
export function parseRegistryAddress (value: unknown, origin = 'registry address'): { host: string, port: number } | null {
  if (value === 'off') {
    return null
  }

  const match = typeof value === 'string' ? /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value) : null
  const port = match == null ? NaN : Number(match[3])
  if (match == null || port > 65535) {
    throw new InvalidConfigError(`${origin} ${JSON.stringify(value)} is invalid; use HOST:PORT (for example 127.0.0.1:5000, [::1]:5000, or port 0 for any free port) or "off"`)
  }

  return { host: match[1] ?? match[2] ?? '127.0.0.1', port }
}

/** Validates a parsed config.json; `path` names the file in errors. */
export function validateConfig (value: unknown, path: string): AgentConfig {
  if (value == null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidConfigError(`${path} must contain a JSON object`)
  }

  const config = { ...defaultConfig(), ...(value as Record<string, unknown>) }

  if (!Array.isArray(config.listen)) {
    throw new InvalidConfigError(`"listen" in ${path} must be an array of multiaddrs`)
  }
  config.listen.forEach((address, i) => parseMultiaddrValue(address, `"listen[${i}]" in ${path}`))

  if (!Array.isArray(config.bootstrap)) {
    throw new InvalidConfigError(`"bootstrap" in ${path} must be an array of multiaddrs`)
  }
  config.bootstrap.forEach((address, i) => parseBootstrapAddress(address, `"bootstrap[${i}]" in ${path}`))

  parseRegistryAddress(config.registry, `"registry" in ${path}`)

  if (!Number.isSafeInteger(config.minConnections) || config.minConnections < 0) {
    throw new InvalidConfigError(`"minConnections" in ${path} must be a whole number of 0 or more, got ${JSON.stringify(config.minConnections)}`)
  }

  if (typeof config.mdns !== 'boolean') {
    throw new InvalidConfigError(`"mdns" in ${path} must be true or false, got ${JSON.stringify(config.mdns)}`)
  }

  if (config.trust != null) {
    try {
      parseTrustConfig(config.trust)
    } catch (err: any) {
      throw new InvalidConfigError(`${err.message as string} (in ${path}); fix the section, or remove it to start in first-use mode and then add entries with "kilomesh trust add"`)
    }
  }
  return config
}

/** Reads and validates config.json. */
export async function loadConfig (path: string): Promise<AgentConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err: any) {
    if (err.code === 'ENOENT') {
      throw new NotInitializedError(`configuration ${path} does not exist; run "kilomesh init" first`)
    }
    throw err
  }

  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err: any) {
    throw new InvalidConfigError(`${path} is not valid JSON (${err.message}); fix the file or move it away and run "kilomesh init"`)
  }

  return validateConfig(parsed, path)
}

/** Writes config.json atomically. */
export async function saveConfig (path: string, config: AgentConfig): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(config, null, 2)}\n`)
}
