/** `kilomesh rollback`: go back to a tag's previous version, for the fleet or for this device. */
import { resolveDataDir } from '../../config/paths.js'
import { ControlClient } from '../../control/client.js'
import { COMMON_HELP, UsageError, type Command } from '../command.js'
import type { RollbackResult } from '../../agent/rollback.js'

export const rollbackCommand: Command = {
  name: 'rollback',
  summary: 'go back to the previous version of a tag, for the fleet or with --local for this device',
  help: `Usage: kilomesh rollback REPOSITORY:TAG [--local | --release] [--dir DIR] [--json]

Without --local, publishes the tag's previous version again as its newest
record, signed by this device, so every subscribed device moves back to it.
Running it again goes forward to the version rolled back from.

With --local, only this device goes back: the agent pulls the previous
version if needed, points the tag in its OCI image layout at it, and keeps it
there until a version newer than the one rolled back from is published.
Running it again goes one version further back.

Options:
  --local     roll back this device only
  --release   end a local rollback now; a subscribed tag moves to its newest version
${COMMON_HELP}`,
  options: {
    local: { type: 'boolean' },
    release: { type: 'boolean' }
  },
  positionals: [1, 1],
  async run (values, [reference]) {
    if (values.local === true && values.release === true) {
      throw new UsageError('--local and --release cannot be combined: --local starts a hold on the previous version, --release ends one')
    }

    const client = await ControlClient.connect(resolveDataDir(values.dir))
    if (values.release === true) {
      const result = await client.post<{ repository: string, tag: string, released: boolean }>('/rollback', { reference, release: true })
      if (values.json === true) {
        console.log(JSON.stringify(result, null, 2))
      } else {
        console.log(result.released ? `released the local rollback of ${result.repository}:${result.tag}` : `${result.repository}:${result.tag} was not held by a local rollback`)
      }
      return 0
    }

    const result = await client.post<RollbackResult>('/rollback', { reference, local: values.local === true })
    if (values.json === true) {
      console.log(JSON.stringify(result, null, 2))
    } else if (result.scope === 'fleet') {
      const audience = result.warning == null ? 'every subscribed device' : 'the devices that accept this agent\'s records'
      console.log(`rolled ${result.repository}:${result.tag} back to ${result.to} for ${audience}`)
      console.log(`  from ${result.from ?? 'a deleted tag'}, clock ${result.hlc ?? '-'}, announced to ${result.announcedTo ?? 0} peer(s)`)
      if (result.warning != null) {
        console.error(`warning: ${result.warning}`)
      }
    } else {
      console.log(`this device now holds ${result.repository}:${result.tag} at ${result.to}`)
      console.log(`  rolled back from ${result.from ?? '-'}; the hold ends when a newer version is published, or with --release`)
    }
    return 0
  }
}
