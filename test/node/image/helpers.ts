/** Shared helpers of the image and layout tests: fixture paths, temporary folders and hand-made tar archives. */
import { execFile, spawnSync } from 'node:child_process'
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import tar from 'tar-stream'
import { BlobStore } from '../../../node/store/blob-store.js'

/** Repository root; compiled tests run from dist/test/node/<area>/, four levels below it. */
export const REPOSITORY_ROOT = fileURLToPath(new URL('../../../../', import.meta.url))

/** Folder of the test images. */
export const FIXTURES = join(REPOSITORY_ROOT, 'test', 'fixtures')

/** Creates temporary folders and removes them all in `cleanup`. */
export class TemporaryFolders {
  private readonly folders: string[] = []

  async create (): Promise<string> {
    const folder = await mkdtemp(join(tmpdir(), 'kilomesh-image-test-'))
    this.folders.push(folder)
    return folder
  }

  async cleanup (): Promise<void> {
    await Promise.all(this.folders.splice(0).map(async folder => rm(folder, { recursive: true, force: true })))
  }
}

/** Creates an initialised, empty content store in a new temporary folder. */
export async function createStore (folders: TemporaryFolders): Promise<BlobStore> {
  const store = new BlobStore(join(await folders.create(), 'data'))
  await store.init()
  return store
}

/** Copies a fixture layout into a temporary folder, for tests that modify it. */
export async function copyFixture (folders: TemporaryFolders, name: string): Promise<string> {
  const copy = join(await folders.create(), name)
  await cp(join(FIXTURES, name), copy, { recursive: true })
  return copy
}

/** Returns the sorted digests of every blob in the store. */
export async function storedDigests (store: BlobStore): Promise<string[]> {
  return (await store.list()).map(info => info.digest).sort()
}

/** Returns the names left in the store's temporary folder (partial writes, staging folders). */
export async function temporaryLeftovers (store: BlobStore): Promise<string[]> {
  return readdir(store.temporaryFolder)
}

/** One entry of a hand-made tar archive. */
export interface TarEntry {
  name: string
  type?: 'file' | 'directory' | 'symlink' | 'link'
  linkname?: string
  body?: string | Uint8Array
}

/** Builds a tar archive in memory with tar-stream, so tests can write entries no well-behaved tool would. */
export async function packTar (entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  const collected = (async () => {
    for await (const chunk of pack) {
      chunks.push(chunk as Buffer)
    }
  })()

  for (const entry of entries) {
    const type = entry.type ?? 'file'
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => {
        if (err == null) {
          resolve()
        } else {
          reject(err)
        }
      }
      if (type === 'file') {
        pack.entry({ name: entry.name, type }, entry.body ?? '', done)
      } else {
        pack.entry({ name: entry.name, type, linkname: entry.linkname }, done)
      }
    })
  }
  pack.finalize()
  await collected
  return Buffer.concat(chunks)
}

/** Runs a program with a time limit and returns its output, or rejects with its stderr. */
export async function run (program: string, args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(program, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err != null) {
        reject(new Error(`${program} ${args.join(' ')} failed: ${err.message}\n${stderr}`))
        return
      }
      resolve(stdout)
    })
  })
}

/** Returns true when `program` is on the PATH; synchronous so that test titles can show when a test is skipped. */
export function isInstalled (program: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$0"', program], { timeout: 5_000 }).status === 0
}
