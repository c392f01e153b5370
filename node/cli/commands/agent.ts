import { resolve } from 'node:path'
import { resolveDataDir } from '../../config/paths.js'
import { COMMON_HELP, UsageError, type Command } from '../command.js'

export const agentCommand: Command = {
  name: 'agent',
  summary: 'run the agent in the foreground',
  help: `Usage: kilomesh agent [--dir DIR] [--listen MULTIADDR]... [--bootstrap MULTIADDR]... [--registry HOST:PORT|off]
                      [--no-mdns] [--swarm-key FILE] [--max-storage SIZE]

Runs this device's agent until SIGINT or SIGTERM. When it is ready it writes
DIR/agent.json with its peer ID, bound addresses, control socket and registry
address, and removes the file when it stops.

Options:
  --listen MULTIADDR      libp2p listen address, repeatable; replaces config.json's
                          (default: /ip4/0.0.0.0/tcp/4001 and /ip6/::/tcp/4001;
                          /ip4/127.0.0.1/tcp/0 picks a free port on loopback)
  --bootstrap MULTIADDR   peer to connect to and keep connected, ending in
                          /p2p/PEER_ID; repeatable; added to config.json's
  --registry HOST:PORT    address of the OCI registry API (default 127.0.0.1:5000),
                          or "off"
  --no-mdns               do not discover peers on the LAN by multicast DNS (mDNS is
                          on by default, and off when every listen address is loopback)
  --swarm-key FILE        private network key ("kilomesh keygen"): connect only to
                          peers with the same key; replaces config.json's "swarmKey"
                          (a path relative to DIR)
  --max-storage SIZE      storage quota, such as 500MB, 2GiB or 1048576 (bytes): above
                          it, blobs of no pinned version are evicted least recently
                          used first; replaces config.json's "maxStorageBytes"
                          (default: no quota)
${COMMON_HELP}`,
  options: {
    listen: { type: 'string', multiple: true },
    bootstrap: { type: 'string', multiple: true },
    registry: { type: 'string' },
    'no-mdns': { type: 'boolean' },
    'swarm-key': { type: 'string' },
    'max-storage': { type: 'string' }
  },
  positionals: [0, 0],
  async run (values) {
    const { parseStorageSize } = await import('../../agent/subscription-config.js')
    let maxStorageBytes: number | undefined
    if (values['max-storage'] != null) {
      try {
        maxStorageBytes = parseStorageSize(values['max-storage'], '--max-storage')
      } catch (err: any) {
        throw new UsageError(err.message)
      }
    }

    // Listen for signals before starting: agent.json appears during start, and
    // a script that reads it may stop the agent at once. Such a stop waits
    // for the start to finish, then stops cleanly.
    const stopRequested = new Promise<void>(resolve => {
      const onSignal = (signal: NodeJS.Signals): void => {
        console.error(`received ${signal}, stopping`)
        resolve()
      }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
    })

    // Set before the agent's modules load, because loading libp2p is what
    // grows V8's young generation.
    const { limitYoungGeneration, scheduleStartupGc } = await import('../../agent/memory.js')
    limitYoungGeneration()

    // Loaded here so that the other commands never load libp2p.
    const { Agent } = await import('../../agent/agent.js')
    const { CLOCK_OFFSET_ENV, TEST_HOOKS_ENV, readTestHookEnv } = await import('../../agent/test-hooks.js')
    const dir = resolveDataDir(values.dir)
    const { testHooks, clockOffsetMs } = readTestHookEnv()
    const swarmKey = typeof values['swarm-key'] === 'string' ? resolve(values['swarm-key']) : undefined
    if (testHooks || clockOffsetMs != null) {
      console.error(`warning: test hooks are on (${TEST_HOOKS_ENV} or ${CLOCK_OFFSET_ENV} is set); never use them on a production device`)
    }
    const agent = await Agent.start({ dir, listen: values.listen, bootstrap: values.bootstrap, registry: values.registry, mdns: values['no-mdns'] === true ? false : undefined, swarmKey, maxStorageBytes, testHooks, clockOffsetMs })

    if (values.json === true) {
      console.log(JSON.stringify({ peerId: agent.peerId, multiaddrs: agent.multiaddrs(), registry: agent.registryAddress }))
    } else {
      console.log(`kilomesh agent ${agent.peerId} ready`)
      for (const address of agent.multiaddrs()) {
        console.log(`  listening on ${address}`)
      }
      console.log(`  registry ${agent.registryAddress ?? 'off'}`)
      if (agent.context.swarmKeyPath != null) {
        console.log(`  private network: only peers with the swarm key ${agent.context.swarmKeyPath} connect`)
      }
    }
    for (const message of agent.skippedListen) {
      console.error(`warning: ${message}; the agent listens on its other addresses`)
    }
    if (agent.multiaddrs().length === 0) {
      console.error('warning: the agent listens on no address, so other devices cannot connect to it; pass --listen, such as /ip4/0.0.0.0/tcp/4001, or add a "listen" entry to config.json')
    }

    // A misspelt setting would otherwise leave the device on its default,
    // such as no storage quota, without a word.
    const { KNOWN_CONFIG_KEYS, unknownConfigKeys } = await import('../../config/config.js')
    const unknown = unknownConfigKeys(agent.context.config)
    if (unknown.length > 0) {
      console.error(`warning: ${agent.context.paths.config} has key(s) that kilomesh does not read: ${unknown.map(key => JSON.stringify(key)).join(', ')}; check the spelling against ${KNOWN_CONFIG_KEYS.join(', ')}`)
    }

    // A key that others may read lets them join the private network, so this
    // warning is printed whatever the log settings.
    if (agent.context.swarmKeyPath != null) {
      const { readableByOthers } = await import('../../net/swarm-key.js')
      if (await readableByOthers(agent.context.swarmKeyPath).catch(() => false)) {
        console.error(`warning: swarm key ${agent.context.swarmKeyPath} can be read by other users; run "chmod 600 ${agent.context.swarmKeyPath}"`)
      }
    }

    const cancelGc = scheduleStartupGc()

    await stopRequested
    cancelGc()
    await agent.stop()
    return 0
  }
}
