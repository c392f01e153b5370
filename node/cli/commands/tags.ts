/** `kilomesh tags [REPOSITORY] [--history]`: the tags of the catalog, with the versions that lost or were replaced. */
import { resolveDataDir } from '../../config/paths.js'
import { ControlClient } from '../../control/client.js'
import { COMMON_HELP, printTable, shortDigest, type Command } from '../command.js'
import type { RecordView, TagView } from '../../control/routes/catalog.js'

/** Returns the tags whose current record is a live version, not a tombstone or missing. */
function liveTags (tags: TagView[]): Array<TagView & { current: RecordView }> {
  return tags.filter((tag): tag is TagView & { current: RecordView } => tag.current != null && !tag.current.deleted)
}

function digestColumn (record: RecordView): string {
  return record.deleted || record.digest == null ? '(deleted)' : shortDigest(record.digest)
}

function printCurrent (tags: TagView[], showRepository: boolean): void {
  const live = liveTags(tags)
  if (live.length === 0) {
    console.log('no tags; publish one with "kilomesh publish REPOSITORY:TAG --from SOURCE"')
    return
  }

  const headers = [...(showRepository ? ['REPOSITORY'] : []), 'TAG', 'DIGEST', 'CLOCK', 'PUBLISHER']
  printTable(headers, live.map(tag => [
    ...(showRepository ? [tag.repository] : []), tag.tag, digestColumn(tag.current), tag.current.hlc, tag.current.publisher
  ]))
}

/** Prints each tag's winner marked with "*", then its older and held versions, and notes versions from several publishers. */
function printHistory (tags: TagView[]): void {
  if (tags.length === 0) {
    console.log('no tags; publish one with "kilomesh publish REPOSITORY:TAG --from SOURCE"')
    return
  }

  for (const [index, tag] of tags.entries()) {
    if (index > 0) {
      console.log('')
    }

    console.log(`${tag.repository}:${tag.tag}`)
    const current = tag.current
    const rows = [
      ...(current == null ? [] : [['*', current.deleted ? 'deleted' : 'current', digestColumn(current), current.hlc, current.publisher]]),
      ...tag.history.map(record => [' ', 'older', digestColumn(record), record.hlc, record.publisher]),
      ...tag.held.map(record => [' ', 'held', digestColumn(record), record.hlc, record.publisher])
    ]
    printTable(['', 'STATE', 'DIGEST', 'CLOCK', 'PUBLISHER'], rows)

    const publishers = new Set([...(current == null ? [] : [current]), ...tag.history].map(record => record.publisher))
    if (publishers.size > 1) {
      console.log(`  ${publishers.size} publishers wrote this tag; the record with the greatest clock wins, and on equal clocks the greater publisher ID`)
    }
    if (tag.held.length > 0) {
      console.log('  held records carry a clock too far ahead of this agent\'s reference clock; they are merged when the clock catches up')
    }
  }
}

export const tagsCommand: Command = {
  name: 'tags',
  summary: 'list the tags of a repository, with --history the versions that lost or were replaced',
  help: `Usage: kilomesh tags [REPOSITORY] [--history] [--dir DIR] [--json]

Lists the current tags the agent's catalog holds for REPOSITORY, or for every
repository when REPOSITORY is left out: the manifest digest, the record's
clock (ISO time and counter of its hybrid logical clock) and its publisher.

With --history, each tag shows its winning record, marked "*", then the
versions that lost the merge or were replaced (newest first, a bounded
number per tag) and records held back because their clock is too far in the
future. Deleted tags are shown too. Two publishers writing one tag while the
mesh was split shows up here: both versions, and which one won.

Options:
  --history   show every kept version of each tag, not only the current one
${COMMON_HELP}`,
  options: { history: { type: 'boolean' } },
  positionals: [0, 1],
  async run (values, [repository]) {
    const client = await ControlClient.connect(resolveDataDir(values.dir))
    const query = repository == null ? '' : `?repository=${encodeURIComponent(repository)}`
    const tags = await client.get<TagView[]>(`/tags${query}`)

    if (values.json === true) {
      const output = values.history === true ? tags : liveTags(tags).map(({ history: _history, held: _held, ...tag }) => tag)
      console.log(JSON.stringify(output, null, 2))
    } else if (values.history === true) {
      printHistory(tags)
    } else {
      printCurrent(tags, repository == null)
    }
    return 0
  }
}
