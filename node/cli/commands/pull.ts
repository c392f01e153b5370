import { resolve } from 'node:path'
import { resolveDataDir } from '../../config/paths.js'
import { ControlClient } from '../../control/client.js'
import { isIndexMediaType } from '../../image/media-types.js'
import { COMMON_HELP, UsageError, formatBytes, shortDigest, type Command } from '../command.js'
import type { PullResult } from '../../agent/pull.js'
import { DEFAULT_PULL_TIMEOUT_SECONDS, type PullEvent } from '../../control/protocol.js'

/** Returns what the pulled digest is, such as " (image index of 2 platforms: ...)", or nothing for a plain image. */
function describeImage (result: PullResult): string {
  const platforms = result.platforms ?? []
  if (platforms.length === 0) {
    return ''
  }
  if (isIndexMediaType(result.mediaType)) {
    return ` (image index of ${platforms.length} platform${platforms.length === 1 ? '' : 's'}: ${platforms.join(', ')})`
  }
  return ` (manifest for ${platforms.join(', ')})`
}

export const pullCommand: Command = {
  name: 'pull',
  summary: 'fetch an image through the mesh and write it as an OCI image layout',
  help: `Usage: kilomesh pull REPOSITORY:TAG|REPOSITORY@DIGEST [--to LAYOUT_DIR] [--platform OS/ARCH|all] [--timeout SECONDS] [--wait SECONDS] [--dir DIR]

Fetches whatever the agent does not hold yet from connected peers, verifying
every blob against its digest, and writes an OCI image layout whose
index.json names the tag. A tag the agent has not heard of is asked of its
connected peers.

Options:
  --to LAYOUT_DIR      folder to write the image layout to (created if missing;
                       other images in an existing layout are kept)
  --platform PLATFORM  platform to take from a multi-platform image, such as
                       linux/arm64 or linux/arm/v7, or "all" to keep the image
                       index with every platform, which the tag then names
                       (default: this machine's)
  --timeout SECONDS    give up after this many seconds (default 300)
  --wait SECONDS       keep looking this long for a peer that has the tag
                       and each blob, for an image still spreading through
                       the mesh (default: fail after about 1.5 seconds
                       when no peer has a blob)
${COMMON_HELP}`,
  options: {
    to: { type: 'string' },
    platform: { type: 'string' },
    timeout: { type: 'string' },
    wait: { type: 'string' }
  },
  positionals: [1, 1],
  async run (values, [reference]) {
    let timeoutSeconds: number | undefined
    if (values.timeout != null) {
      timeoutSeconds = Number(values.timeout)
      if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
        throw new UsageError(`invalid --timeout ${JSON.stringify(values.timeout)}: give a number of seconds above 0`)
      }
    }

    let waitSeconds: number | undefined
    if (values.wait != null) {
      waitSeconds = Number(values.wait)
      if (!Number.isFinite(waitSeconds) || waitSeconds < 0 || waitSeconds > (timeoutSeconds ?? DEFAULT_PULL_TIMEOUT_SECONDS)) {
        throw new UsageError(`invalid --wait ${JSON.stringify(values.wait)}: give a number of seconds from 0 up to the --timeout (${timeoutSeconds ?? DEFAULT_PULL_TIMEOUT_SECONDS})`)
      }
    }

    const client = await ControlClient.connect(resolveDataDir(values.dir))
    const showProgress = values.json !== true && process.stdout.isTTY
    const onEvent = (event: PullEvent): void => {
      if (showProgress && event.type === 'progress') {
        const percent = event.totalBytes === 0 ? 100 : Math.floor(100 * event.receivedBytes / event.totalBytes)
        process.stdout.write(`\r  ${shortDigest(event.digest)}  ${formatBytes(event.receivedBytes)} / ${formatBytes(event.totalBytes)}  ${percent}%   `)
      }
    }

    const to = typeof values.to === 'string' ? resolve(values.to) : undefined
    const result = await client.pull<PullResult>({ reference, to, platform: values.platform, timeoutSeconds, waitSeconds }, onEvent)
    if (showProgress) {
      process.stdout.write('\r\x1b[K')
    }

    if (values.json === true) {
      console.log(JSON.stringify(result, null, 2))
    } else {
      console.log(`pulled ${result.reference} -> ${result.digest}${describeImage(result)}`)
      console.log(`  ${result.blobCount} blobs, ${result.fetchedBlobs} fetched from peers (${formatBytes(result.fetchedBytes)})`)
      if (result.exportedTo != null) {
        console.log(`  written to ${result.exportedTo}`)
      }
    }
    return 0
  }
}
