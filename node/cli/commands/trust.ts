/** `kilomesh trust add|ls|rm`: which publishers the agent accepts for which repositories. */
import { resolveDataDir } from '../../config/paths.js'
import { ControlClient } from '../../control/client.js'
import { COMMON_HELP, UsageError, printTable, type Command } from '../command.js'
import type { TrustEntry } from '../../catalog/trust.js'
import type { TrustView } from '../../control/routes/catalog.js'

const ACTIONS = ['add', 'ls', 'rm']

function printTrust (view: TrustView): void {
  console.log(`mode ${view.mode}`)
  if (view.entries.length === 0) {
    console.log('no trust entries; add one with "kilomesh trust add PEER_ID --repository PATTERN"')
  } else {
    printTable(['PUBLISHER', 'REPOSITORIES'], view.entries.map(entry => [entry.peerId, entry.repository]))
  }

  if (view.owners.length > 0) {
    console.log('')
    console.log('first-use owners (repositories no entry covers belong to their first publisher):')
    printTable(['REPOSITORY', 'OWNER'], view.owners.map(owner => [owner.repository, owner.peerId]))
  }
}

export const trustCommand: Command = {
  name: 'trust',
  summary: 'list, add or remove the publishers this agent accepts',
  help: `Usage: kilomesh trust ls [--dir DIR] [--json]
       kilomesh trust add PEER_ID [--repository PATTERN] [--dir DIR] [--json]
       kilomesh trust rm PEER_ID [--repository PATTERN] [--dir DIR] [--json]

Every tag record is signed by its publisher. The trust policy decides whose
records the agent accepts for which repositories:

- records this agent publishes are always accepted;
- a trust entry lets PEER_ID publish to the repositories PATTERN matches;
- a repository that some entry covers is closed to every publisher that no
  entry names;
- under the default mode "first-use", any other repository belongs to the
  first publisher the agent accepted for it, so an outsider cannot replace
  a tag someone else published first.

Changes apply to the running agent at once and are saved in the "trust"
section of DIR/config.json. After "add", the agent syncs with its connected
peers, so records it rejected before arrive again.

Actions:
  ls                      print the mode, the entries and the first-use owners
  add PEER_ID             trust PEER_ID (as "kilomesh status" prints it on the
                          publishing device) for the repositories of --repository
  rm PEER_ID              remove PEER_ID's entries, only the one for --repository
                          when given

Options:
  --repository PATTERN    repository name, where "*" matches any characters
                          including "/", for example "demo/*" (default "*": all)
${COMMON_HELP}`,
  options: { repository: { type: 'string' } },
  positionals: [1, 2],
  async run (values, [action, peerId]) {
    if (action == null || !ACTIONS.includes(action)) {
      throw new UsageError(`unknown action ${JSON.stringify(action ?? '')}: use "ls", "add PEER_ID" or "rm PEER_ID"`)
    }

    if (action === 'ls' && (peerId != null || values.repository != null)) {
      throw new UsageError('"kilomesh trust ls" takes no PEER_ID and no --repository')
    }

    if (action !== 'ls' && peerId == null) {
      throw new UsageError(`"kilomesh trust ${action}" needs the publisher's PEER_ID`)
    }

    if (values.repository === '') {
      throw new UsageError('--repository needs a pattern such as "demo/*"; leave it out to mean every repository')
    }

    const client = await ControlClient.connect(resolveDataDir(values.dir))

    if (action === 'ls') {
      const view = await client.get<TrustView>('/trust')
      if (values.json === true) {
        console.log(JSON.stringify(view, null, 2))
      } else {
        printTrust(view)
      }
      return 0
    }

    if (action === 'add') {
      const result = await client.post<TrustView & { added: TrustEntry }>('/trust/add', { peerId, repository: values.repository })
      console.log(values.json === true ? JSON.stringify(result, null, 2) : `trusted ${result.added.peerId} for ${result.added.repository}`)
      return 0
    }

    const result = await client.post<TrustView & { removed: TrustEntry[] }>('/trust/rm', { peerId, repository: values.repository })
    if (values.json === true) {
      console.log(JSON.stringify(result, null, 2))
    } else {
      for (const entry of result.removed) {
        console.log(`removed trust in ${entry.peerId} for ${entry.repository}`)
      }
    }
    return 0
  }
}
