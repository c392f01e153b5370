/** Locations of the files inside a kilomesh data directory. */
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { InvalidConfigError } from './errors.js'

/** Environment variable that sets the data directory when `--dir` is not given. */
export const DATA_DIR_ENV = 'KILOMESH_DIR'

/** Returns the data directory: `--dir`, else `$KILOMESH_DIR`, else `~/.kilomesh`, as an absolute path. */
export function resolveDataDir (flag?: string): string {
  // An empty flag, often an unset shell variable, must not fall back to the home folder.
  if (flag === '') {
    throw new InvalidConfigError(`--dir is empty; give the data directory, or leave the flag out to use $${DATA_DIR_ENV} or ~/.kilomesh`)
  }
  const chosen = flag ?? process.env[DATA_DIR_ENV]
  return resolve(chosen != null && chosen !== '' ? chosen : join(homedir(), '.kilomesh'))
}

/** Paths of the files the agent and the CLI share. */
export interface DataDirPaths {
  root: string
  config: string
  identity: string
  agentFile: string
  controlSocket: string
  datastore: string
  uploads: string
}

export function dataDirPaths (root: string): DataDirPaths {
  return {
    root,
    config: join(root, 'config.json'),
    identity: join(root, 'identity.key'),
    agentFile: join(root, 'agent.json'),
    controlSocket: join(root, 'control.sock'),
    datastore: join(root, 'datastore'),
    uploads: join(root, 'uploads')
  }
}
