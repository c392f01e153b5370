/**
 * Listen addresses for the agent's transport, which is TCP only: which of
 * the configured addresses it can use, and why none bound when none did.
 */
import { lookup } from 'node:dns/promises'
import { createServer } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { InvalidConfigError } from '../config/errors.js'
import { raceAbort } from '../net/signals.js'

/** Protocols a TCP listen address may name its host with. */
const HOST_PROTOCOLS = new Set(['ip4', 'ip6', 'dns', 'dns4', 'dns6'])

/** The forms of a TCP listen address, for messages. */
const TCP_FORMS = '/ip4/0.0.0.0/tcp/4001 or /ip6/::/tcp/4001'

/** Address family each DNS protocol resolves to, where 0 takes either. */
const DNS_FAMILIES: Record<string, 0 | 4 | 6> = { dns: 0, dns4: 4, dns6: 6 }

/** Time to wait for a test bind while explaining a failed listen, in ms. */
const DIAGNOSE_TIMEOUT_MS = 2_000

export interface ListenAddresses {
  /** Addresses to give libp2p. */
  usable: string[]
  /** One message per address left out, naming it and the reason. */
  skipped: string[]
}

/**
 * Splits listen addresses into those the TCP transport can bind (a host
 * and a TCP port, optionally after an IPv6 zone and before this agent's own
 * /p2p/PEER_ID, or a /unix/ socket path) and the others. An address for
 * another transport, such as QUIC or WebSockets, would bind nothing, so it
 * is left out with a message, and the agent starts on the rest. Throws when
 * no address is left, and for a /p2p/ part that names another peer.
 * `originOf` names where each address came from, for messages.
 */
export function splitListenAddresses (addresses: string[], peerId: string, originOf: (index: number) => string): ListenAddresses {
  const result: ListenAddresses = { usable: [], skipped: [] }

  addresses.forEach((address, index) => {
    const origin = originOf(index)
    const components = multiaddr(address).getComponents()
    const last = components[components.length - 1]
    if (last?.name === 'p2p' && last.value !== peerId) {
      throw new InvalidConfigError(`${origin} ${JSON.stringify(address)} names peer ${last.value ?? ''}, but this agent is ${peerId}: drop the /p2p/ part, because an agent listens under its own peer ID`)
    }

    const names = components.map(component => component.name).filter((name, i) => !(i === components.length - 1 && name === 'p2p'))
    // An IPv6 zone may only come before an IPv6 address.
    const hostAt = names[0] === 'ip6zone' && names[1] === 'ip6' ? 1 : 0
    const isTcp = names.length === hostAt + 2 && HOST_PROTOCOLS.has(names[hostAt] ?? '') && names[hostAt + 1] === 'tcp'
    if (isTcp || address.startsWith('/unix/')) {
      result.usable.push(address)
    } else {
      result.skipped.push(`${origin} ${JSON.stringify(address)} is not a TCP address: the agent listens on TCP only, so use a form such as ${TCP_FORMS}`)
    }
  })

  if (result.usable.length === 0 && result.skipped.length > 0) {
    throw new InvalidConfigError(result.skipped.join('; '))
  }
  return result
}

/**
 * Returns why none of `addresses` could be bound, for the error when the
 * agent listens on nothing. Each TCP address is bound once more with a
 * plain server, which reports the system's reason, such as a port in use
 * or an address that this host does not have.
 */
export async function explainListenFailure (addresses: string[]): Promise<string> {
  const reasons = await Promise.all(addresses.map(async address => `${address}: ${await bindError(address)}`))
  return `could not listen on any of ${addresses.join(', ')} (${reasons.join('; ')}); pass --listen with an address of this host and a free port, or port 0 for any free port`
}

/**
 * Returns a message for each listen address with a fixed port that no bound
 * address uses, with the system's reason. libp2p starts on the addresses
 * that bind and leaves the others out without a word. An address with port
 * 0 is not checked, because its bound port is unknown beforehand.
 */
export async function findUnboundAddresses (addresses: string[], bound: string[]): Promise<string[]> {
  const boundPorts = new Set(bound.map(address => portOf(address)))
  const unbound = addresses.filter(address => {
    const port = portOf(address)
    return port != null && port !== 0 && !boundPorts.has(port)
  })
  return Promise.all(unbound.map(async address => `listen address ${address} did not bind: ${await bindError(address)}`))
}

function portOf (address: string): number | undefined {
  const port = multiaddr(address).getComponents().find(component => component.name === 'tcp')?.value
  return port == null ? undefined : Number(port)
}

async function bindError (address: string): Promise<string> {
  const components = multiaddr(address).getComponents()
  const host = components.find(component => HOST_PROTOCOLS.has(component.name))
  const zone = components.find(component => component.name === 'ip6zone')?.value
  const port = portOf(address)
  if (host?.value == null || port == null || !Number.isInteger(port)) {
    return 'not checked'
  }

  try {
    let ip = zone == null ? host.value : `${host.value}%${zone}`
    if (host.name.startsWith('dns')) {
      const family = DNS_FAMILIES[host.name] ?? 0
      // The lookup takes no signal, so it is raced against the same limit as the bind.
      ip = (await raceAbort(lookup(host.value, { family }), AbortSignal.timeout(DIAGNOSE_TIMEOUT_MS))).address
    }
    return await new Promise<string>(resolve => {
      const server = createServer()
      const timer = setTimeout(() => { server.close(); resolve('timed out while checking') }, DIAGNOSE_TIMEOUT_MS)
      server.once('error', (err: NodeJS.ErrnoException) => { clearTimeout(timer); resolve(describeBindError(err)) })
      server.listen({ host: ip, port }, () => {
        clearTimeout(timer)
        server.close()
        resolve('binds now, so another process may have held it at the start')
      })
    })
  } catch (err: any) {
    return describeBindError(err)
  }
}

function describeBindError (err: NodeJS.ErrnoException): string {
  if (err.name === 'TimeoutError') {
    return 'timed out while checking'
  }
  switch (err.code) {
    case 'EADDRINUSE': return 'the port is in use, maybe by another agent'
    case 'EADDRNOTAVAIL': return 'this host has no such address'
    case 'EACCES': return 'permission denied, as for a port below 1024 without privileges'
    case 'ENOTFOUND': return 'the host name does not resolve'
    default: return err.message
  }
}
