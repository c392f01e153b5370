import { resolve } from 'node:path'
import { resolveDataDir } from '../../config/paths.js'
import { ControlClient } from '../../control/client.js'
import { COMMON_HELP, UsageError, formatBytes, type Command } from '../command.js'
import type { PublishResult } from '../../agent/publish.js'

export const publishCommand: Command = {
  name: 'publish',
  summary: 'import an image and announce it to the mesh under a tag',
  help: `Usage: kilomesh publish REPOSITORY:TAG --from SOURCE [--dir DIR]

Imports an image into the agent's store, signs a tag record with this
device's key and announces it to every connected peer.

SOURCE is one of:
  DIR or DIR:TAG     an OCI image layout folder (TAG picks one of its images)
  FILE.tar[:TAG]     an OCI archive (a tar of an OCI image layout)
  FILE.tar[:REF]     a "docker save" archive

Options:
  --from SOURCE   image to publish (required)
${COMMON_HELP}`,
  options: { from: { type: 'string' } },
  positionals: [1, 1],
  async run (values, [reference]) {
    if (typeof values.from !== 'string' || values.from === '') {
      throw new UsageError('missing --from SOURCE: give the image layout folder or archive to publish')
    }

    const client = await ControlClient.connect(resolveDataDir(values.dir))
    const result = await client.post<PublishResult>('/publish', { reference, from: resolve(values.from) })

    if (values.json === true) {
      console.log(JSON.stringify(result, null, 2))
    } else {
      console.log(`published ${result.repository}:${result.tag} -> ${result.digest}`)
      console.log(`  ${result.blobCount} blobs, manifest ${formatBytes(result.sizeBytes)}, clock ${result.hlc}, announced to ${result.announcedTo} peer(s)`)
    }
    if (result.warning != null) {
      console.error(`warning: ${result.warning}`)
    }
    return 0
  }
}
