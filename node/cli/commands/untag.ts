/** `kilomesh untag REPOSITORY:TAG`: deletes a tag across the mesh with a signed tombstone. */
import { resolveDataDir } from '../../config/paths.js'
import { ControlClient } from '../../control/client.js'
import { COMMON_HELP, type Command } from '../command.js'
import type { UntagResult } from '../../control/routes/catalog.js'

export const untagCommand: Command = {
  name: 'untag',
  summary: 'delete a tag on every agent with a signed tombstone record',
  help: `Usage: kilomesh untag REPOSITORY:TAG [--dir DIR] [--json]

Publishes a tombstone: a tag record signed by this device that marks the tag
deleted, with a clock greater than every record the agent has seen for it.
It spreads and merges like any other record, so agents that were cut off
delete the tag when they reconnect, unless a newer version was published in
the meantime. Blobs stay in the store; the tag is removed from the data
directory's index.json.

Other agents accept the tombstone only if their trust policy accepts this
device for the repository; the command prints a warning when this agent's
own policy would not.

Options:
${COMMON_HELP}`,
  options: {},
  positionals: [1, 1],
  async run (values, [reference]) {
    const client = await ControlClient.connect(resolveDataDir(values.dir))
    const result = await client.post<UntagResult>('/untag', { reference })

    if (values.json === true) {
      console.log(JSON.stringify(result, null, 2))
    } else {
      console.log(`deleted ${result.repository}:${result.tag} (tombstone clock ${result.hlc})`)
      if (result.warning != null) {
        console.error(`warning: ${result.warning}`)
      }
    }
    return 0
  }
}
