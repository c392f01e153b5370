import { resolveDataDir } from '../../config/paths.js'
import { COMMON_HELP, type Command } from '../command.js'

export const initCommand: Command = {
  name: 'init',
  summary: 'create a data directory with a new device identity',
  help: `Usage: kilomesh init [--dir DIR]

Creates the data directory (an OCI image layout), a persistent Ed25519
identity (identity.key, mode 0600) and config.json. Running it again on an
existing directory changes nothing.

Options:
${COMMON_HELP}`,
  options: {},
  positionals: [0, 0],
  async run (values) {
    // Loaded on use, so that commands which only ask the agent load no key code.
    const { initDataDir } = await import('../../config/init.js')
    const result = await initDataDir(resolveDataDir(values.dir))
    if (values.json === true) {
      console.log(JSON.stringify(result, null, 2))
    } else if (result.created.length === 0) {
      console.log(`${result.dir} is already initialised (peer ID ${result.peerId})`)
    } else {
      console.log(`initialised ${result.dir} (created ${result.created.join(', ')})`)
      console.log(`peer ID ${result.peerId}`)
    }
    return 0
  }
}
