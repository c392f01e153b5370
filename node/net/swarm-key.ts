/**
 * Private network (swarm) keys: a 32-byte pre-shared key in the text format
 * that go-libp2p, Kubo and `@libp2p/pnet` read,
 *
 * ```
 * /key/swarm/psk/1.0.0/
 * /base16/
 * <64 hexadecimal digits>
 * ```
 *
 * An agent started with a swarm key encrypts every raw connection with it
 * (`@libp2p/pnet`, XSalsa20) before noise runs, so a device without the same
 * key cannot complete a handshake or read any byte of the mesh.
 *
 * libp2p has one connection protector slot. `privateNetworkProtector` takes
 * a second protector (the simulator's fault layer) and applies it on top of
 * pnet, so both can be used at once.
 */
import { randomBytes } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { logger } from '@libp2p/logger'
import { writeFileAtomic } from '../store/atomic-file.js'
import { InvalidSwarmKeyError } from './errors.js'
import { checkedPreSharedKey } from './swarm-key-check.js'
import type { AbortOptions, ConnectionProtector, MessageStream } from '@libp2p/interface'
import type { Libp2pOptions } from 'libp2p'

const log = logger('kilomesh:swarm-key')

/** First line of a swarm key file: the key type and version. */
export const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/'

/** Second line: the encoding of the key line; `@libp2p/pnet` reads only base16. */
export const SWARM_KEY_ENCODING = '/base16/'

/** Bytes of the pre-shared key itself. */
export const SWARM_KEY_BYTES = 32

/** File mode of a swarm key written by `kilomesh keygen`: read and write for the owner only. */
export const SWARM_KEY_FILE_MODE = 0o600

/** Largest swarm key file read, in bytes; a valid one has about 95. */
const MAX_SWARM_KEY_FILE_BYTES = 4096

/** A libp2p `connectionProtector` option: a factory called once with the node's components. */
export type ProtectorFactory = NonNullable<Libp2pOptions['connectionProtector']>

/** Returns a new random swarm key in its text format, with a final newline. */
export function generateSwarmKey (): string {
  return `${SWARM_KEY_HEADER}\n${SWARM_KEY_ENCODING}\n${randomBytes(SWARM_KEY_BYTES).toString('hex')}\n`
}

/**
 * Checks swarm key text and returns it in the canonical form that
 * `@libp2p/pnet` decodes. `source` names the file or flag in errors.
 */
export function parseSwarmKey (text: string, source: string): Uint8Array {
  const lines = text.split(/\r?\n/).map(line => line.trim())
  while (lines.length > 0 && lines[lines.length - 1] === '') {
    lines.pop()
  }

  const [header, encoding, key] = lines
  const fix = 'create a key with "kilomesh keygen --out FILE" and copy the same file to every device of the mesh'

  if (header !== SWARM_KEY_HEADER) {
    throw new InvalidSwarmKeyError(`swarm key ${source} does not start with the line ${SWARM_KEY_HEADER}; ${fix}`)
  }

  if (encoding !== SWARM_KEY_ENCODING) {
    throw new InvalidSwarmKeyError(`swarm key ${source} has encoding line ${JSON.stringify((encoding ?? '').slice(0, 40))}, but only ${SWARM_KEY_ENCODING} is supported; ${fix}`)
  }

  if (lines.length !== 3 || key == null || !new RegExp(`^[0-9a-fA-F]{${SWARM_KEY_BYTES * 2}}$`).test(key)) {
    throw new InvalidSwarmKeyError(`swarm key ${source} must have a third and last line of ${SWARM_KEY_BYTES * 2} hexadecimal digits (${SWARM_KEY_BYTES} bytes); ${fix}`)
  }

  return new TextEncoder().encode(`${SWARM_KEY_HEADER}\n${SWARM_KEY_ENCODING}\n${key.toLowerCase()}`)
}

/** Returns true when users other than the owner may read the file at `path`, which a swarm key must not allow. */
export async function readableByOthers (path: string): Promise<boolean> {
  return ((await stat(path)).mode & 0o077) !== 0
}

/** Reads and checks a swarm key file; logs a warning when users other than the owner may read it. */
export async function loadSwarmKey (path: string, options?: AbortOptions): Promise<Uint8Array> {
  let text: string
  try {
    const info = await stat(path)
    if (!info.isFile() || info.size > MAX_SWARM_KEY_FILE_BYTES) {
      throw new InvalidSwarmKeyError(`swarm key ${path} is not a file of at most ${MAX_SWARM_KEY_FILE_BYTES} bytes; give the file that "kilomesh keygen --out FILE" wrote`)
    }

    if ((info.mode & 0o077) !== 0) {
      log('swarm key %s can be read by other users (mode %s); run "chmod 600 %s"', path, (info.mode & 0o777).toString(8), path)
    }

    text = await readFile(path, { encoding: 'utf8', signal: options?.signal })
  } catch (err: any) {
    if (err instanceof InvalidSwarmKeyError) {
      throw err
    }

    throw new InvalidSwarmKeyError(`failed to read swarm key ${path}: ${err.message}; check the path and that the agent's user may read the file`)
  }

  return parseSwarmKey(text, path)
}

/**
 * Writes swarm key text to `path` with mode 0600. An existing file is kept
 * unless `overwrite` is true, because replacing a key cuts this device off
 * from every device that still uses the old one.
 */
export async function writeSwarmKey (path: string, text: string, options: { overwrite?: boolean } = {}): Promise<void> {
  if (options.overwrite !== true) {
    const exists = await stat(path).then(() => true, (err: any) => {
      if (err.code === 'ENOENT') {
        return false
      }
      throw err
    })
    if (exists) {
      throw new InvalidSwarmKeyError(`${path} already exists; choose another --out FILE, or add --force to replace it (devices that keep the old key can no longer connect)`)
    }
  }

  try {
    await writeFileAtomic(path, text, { mode: SWARM_KEY_FILE_MODE })
  } catch (err: any) {
    // The atomic write names its temporary file, which means nothing to the user.
    const reason = err.code === 'ENOENT' ? `the folder ${dirname(path)} does not exist; create it or choose another --out FILE` : `${err.code ?? err.message}; check that the folder exists and that you may write to it`
    throw new InvalidSwarmKeyError(`failed to write swarm key ${path}: ${reason}`, { cause: err })
  }
}

/**
 * Returns a protector that runs `protectors` in order on each raw
 * connection: the first wraps the raw connection, each next one wraps the
 * stream the previous one returned.
 */
export function composeProtectors (...protectors: ProtectorFactory[]): ProtectorFactory {
  return (components) => {
    const instances: ConnectionProtector[] = protectors.map(factory => factory(components))
    return {
      async protect (connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
        let protectedConnection = connection
        for (const instance of instances) {
          protectedConnection = await instance.protect(protectedConnection, options)
        }
        return protectedConnection
      }
    }
  }
}

/**
 * Returns the protector of a private network: `@libp2p/pnet` with the given
 * key (as `parseSwarmKey` or `loadSwarmKey` return it), followed by `then`
 * when given. pnet wraps the raw connection and `then` wraps pnet's stream,
 * so the second protector sees the same bytes as it would without a key.
 * A peer with another key, or none, fails with a SwarmKeyMismatchError
 * (swarm-key-check.ts).
 */
export function privateNetworkProtector (swarmKey: Uint8Array, then?: ProtectorFactory): ProtectorFactory {
  const pnet: ProtectorFactory = checkedPreSharedKey(swarmKey)
  return then == null ? pnet : composeProtectors(pnet, then)
}
