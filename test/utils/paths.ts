/** Locations of the repository, the compiled CLI and the test fixtures, from compiled tests. */
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

/** Repository root; compiled tests live in dist/test/utils, three levels below it. */
export const REPOSITORY_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

export const CLI_PATH = join(REPOSITORY_ROOT, 'dist', 'node', 'cli', 'bin.js')

export const FIXTURES = join(REPOSITORY_ROOT, 'test', 'fixtures')

/** Returns the path of a fixture under test/fixtures. */
export function fixture (...parts: string[]): string {
  return join(FIXTURES, ...parts)
}
