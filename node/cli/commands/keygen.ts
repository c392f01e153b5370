/** `kilomesh keygen [--out FILE]`: creates a private network (swarm) key. */
import { resolve } from 'node:path'
import { UsageError, type Command } from '../command.js'

export const keygenCommand: Command = {
  name: 'keygen',
  summary: 'create a private network key that keeps devices without it out',
  help: `Usage: kilomesh keygen [--out FILE [--force]] [--json]

Creates a random 32-byte private network key in the format libp2p uses
(go-libp2p, Kubo and @libp2p/pnet read it):

  /key/swarm/psk/1.0.0/
  /base16/
  <64 hexadecimal digits>

Copy the same file to every device and start each agent with
"kilomesh agent --swarm-key FILE" (or set "swarmKey" in config.json). The
agents then encrypt every connection with the key before anything else, so a
device without it cannot connect at all. Treat the file as a secret.

Without --out the key is printed on stdout. It does not need a running agent.

Options:
  --out FILE   write the key to FILE with mode 0600 instead of printing it
  --force      replace FILE if it exists (devices with the old key can no
               longer connect)
  --json       print {"path": FILE} or {"key": KEY}
  -h, --help   show this help`,
  options: { out: { type: 'string' }, force: { type: 'boolean' } },
  positionals: [0, 0],
  async run (values) {
    if (values.out === '') {
      throw new UsageError('--out needs a file name, for example --out swarm.key')
    }
    if (values.force === true && values.out == null) {
      throw new UsageError('--force only applies with --out FILE')
    }

    // Loaded here so that other commands do not load @libp2p/pnet.
    const { generateSwarmKey, writeSwarmKey } = await import('../../net/swarm-key.js')
    const key = generateSwarmKey()

    if (typeof values.out !== 'string') {
      process.stdout.write(values.json === true ? `${JSON.stringify({ key })}\n` : key)
      return 0
    }

    const path = resolve(values.out)
    await writeSwarmKey(path, key, { overwrite: values.force === true })
    console.log(values.json === true ? JSON.stringify({ path }) : `wrote a private network key to ${path} (mode 0600); copy it to every device of the mesh and start their agents with --swarm-key ${path}`)
    return 0
  }
}
