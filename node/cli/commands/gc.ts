/** `kilomesh gc`: runs garbage collection under the storage quota now. */
import { resolveDataDir } from '../../config/paths.js'
import { ControlClient } from '../../control/client.js'
import { COMMON_HELP, formatBytes, shortDigest, type Command } from '../command.js'
import type { CollectResult } from '../../store/gc.js'

export const gcCommand: Command = {
  name: 'gc',
  summary: 'evict unpinned blobs now, least recently used first, until the store fits the quota',
  help: `Usage: kilomesh gc [--max-storage SIZE] [--dry-run] [--dir DIR] [--json]

Evicts blobs, least recently used first, until the store holds no more than
the storage quota set by "kilomesh agent --max-storage" (config key
maxStorageBytes). Blobs of the current and previous version of each
subscribed tag, of tags held by a local rollback, and blobs used in the last
ten minutes are never evicted. An index.json entry whose image loses a blob
is removed with it. The agent runs the same collection every minute when a
quota is set.

Options:
  --max-storage SIZE   quota for this run only, such as 500MB, 2GiB or 1048576
                       (bytes); 0 evicts every blob that is not kept
  --dry-run            list what would be evicted without removing anything
${COMMON_HELP}`,
  options: {
    'max-storage': { type: 'string' },
    'dry-run': { type: 'boolean' }
  },
  positionals: [0, 0],
  async run (values) {
    const client = await ControlClient.connect(resolveDataDir(values.dir))
    const result = await client.post<CollectResult>('/gc', { maxStorage: values['max-storage'], dryRun: values['dry-run'] === true })

    if (values.json === true) {
      console.log(JSON.stringify(result, null, 2))
      return 0
    }

    if (result.maxStorageBytes == null) {
      console.log(`no storage quota is set, so nothing was evicted; the store contains ${formatBytes(result.storedBytesBefore)}`)
      console.log('set one with "kilomesh agent --max-storage SIZE", or pass --max-storage SIZE to this command')
      return 0
    }

    const verb = result.dryRun ? 'would evict' : 'evicted'
    console.log(`${verb} ${result.evicted.length} blob(s), ${formatBytes(result.freedBytes)}; the store ${result.dryRun ? 'would contain' : 'contains'} ${formatBytes(result.storedBytesAfter)} of the ${formatBytes(result.maxStorageBytes)} quota`)
    for (const blob of result.evicted) {
      console.log(`  ${shortDigest(blob.digest)}  ${formatBytes(blob.sizeBytes).padStart(10)}  last used ${new Date(blob.lastUsedMs).toISOString()}`)
    }
    if (result.removedRefs.length > 0) {
      console.log(`${result.dryRun ? 'would remove' : 'removed'} from index.json: ${result.removedRefs.join(', ')}`)
    }
    console.log(`kept ${result.pinnedBlobs} pinned blob(s) (${formatBytes(result.pinnedBytes)}) and ${result.recentBlobs} recently used blob(s)`)
    if (result.overQuota) {
      console.log('the store is still above the quota because everything left is pinned or recently used; raise the quota or unsubscribe from something')
    }
    return 0
  }
}
