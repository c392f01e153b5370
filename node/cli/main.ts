/** Dispatches `kilomesh COMMAND ...` to its command and turns errors into messages and exit codes. */
import { readFileSync } from 'node:fs'
import { agentCommand } from './commands/agent.js'
import { gcCommand } from './commands/gc.js'
import { initCommand } from './commands/init.js'
import { keygenCommand } from './commands/keygen.js'
import { publishCommand } from './commands/publish.js'
import { pullCommand } from './commands/pull.js'
import { rollbackCommand } from './commands/rollback.js'
import { simCommand } from './commands/sim.js'
import { subscribeCommand, subscriptionsCommand, unsubscribeCommand } from './commands/subscribe.js'
import { tagsCommand } from './commands/tags.js'
import { trustCommand } from './commands/trust.js'
import { untagCommand } from './commands/untag.js'
import { connectCommand, imagesCommand, peersCommand, statusCommand } from './commands/views.js'
import { UsageError, parseCommandArgs, type Command } from './command.js'

/** Every command, in the order `kilomesh --help` lists them. */
export const COMMANDS: Command[] = [
  initCommand,
  agentCommand,
  publishCommand,
  pullCommand,
  subscribeCommand,
  unsubscribeCommand,
  subscriptionsCommand,
  rollbackCommand,
  gcCommand,
  imagesCommand,
  peersCommand,
  statusCommand,
  connectCommand,
  tagsCommand,
  untagCommand,
  trustCommand,
  keygenCommand,
  simCommand
]

function version (): string {
  const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  return manifest.version
}

function overview (): string {
  const width = Math.max(...COMMANDS.map(command => command.name.length))
  return `kilomesh: a peer-to-peer mesh for micro container images

Usage: kilomesh COMMAND [OPTIONS]

Commands:
${COMMANDS.map(command => `  ${command.name.padEnd(width)}  ${command.summary}`).join('\n')}

Run "kilomesh COMMAND --help" for a command's options.`
}

/** Runs the CLI with `args` (without the node and script paths); returns the exit code. */
export async function main (args: string[]): Promise<number> {
  const [name, ...rest] = args

  if (name == null || name === '--help' || name === '-h' || name === 'help') {
    console.log(overview())
    return name == null ? 2 : 0
  }
  if (name === '--version') {
    console.log(version())
    return 0
  }

  const command = COMMANDS.find(candidate => candidate.name === name)
  if (command == null) {
    console.error(`kilomesh: unknown command ${JSON.stringify(name)}; run "kilomesh --help" for the list`)
    return 2
  }

  try {
    const { values, positionals } = parseCommandArgs(command, rest)
    if (values.help === true) {
      console.log(command.help)
      return 0
    }
    // An empty --dir, often an unset shell variable, is a bad flag value like any other.
    if (values.dir === '') {
      throw new UsageError('--dir is empty; give the data directory, or leave the flag out to use $KILOMESH_DIR or ~/.kilomesh')
    }
    return await command.run(values, positionals)
  } catch (err: any) {
    // Scripts that ask for --json get errors as one JSON line on stderr too.
    if (rest.includes('--json')) {
      console.error(JSON.stringify({ error: { command: command.name, name: err.name ?? 'Error', message: err.message ?? String(err) } }))
      return err instanceof UsageError ? 2 : 1
    }
    if (err instanceof UsageError) {
      console.error(`kilomesh ${command.name}: ${err.message}\nRun "kilomesh ${command.name} --help" for usage.`)
      return 2
    }
    console.error(`kilomesh ${command.name}: ${err.message ?? String(err)}`)
    if (process.env.KILOMESH_DEBUG != null && err.stack != null) {
      console.error(err.stack)
    }
    return 1
  }
}
