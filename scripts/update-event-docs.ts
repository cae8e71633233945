// Rewrites the JSON example and JSON Schema of every event type in docs/events.md from the code
// (libs/domain: EVENT_EXAMPLES, EVENT_SCHEMAS). The field tables stay hand-written; a unit test
// checks that they name every field.
import { readFileSync, writeFileSync } from 'node:fs';
import { EVENT_EXAMPLES, EVENT_SCHEMAS, EVENT_TYPES } from '@relay/domain';

const file = 'docs/events.md';
let doc = readFileSync(file, 'utf8');
for (const type of EVENT_TYPES) {
  const start = doc.indexOf(`\n## ${type}\n`);
  if (start < 0) throw new Error(`docs/events.md has no section for ${type}`);
  const next = doc.indexOf('\n## ', start + 1);
  const end = next < 0 ? doc.length : next;
  const blocks = [EVENT_EXAMPLES[type], EVENT_SCHEMAS[type]].map((value) => JSON.stringify(value, null, 2));
  let index = 0;
  const section = doc.slice(start, end).replace(/^```json\n[\s\S]*?^```$/gm, () => {
    const block = blocks[index++];
    if (block === undefined) throw new Error(`${type}: more JSON blocks than expected`);
    return '```json\n' + block + '\n```';
  });
  if (index !== 2) throw new Error(`${type}: expected an example and a schema block, found ${index}`);
  doc = doc.slice(0, start) + section + doc.slice(end);
}
writeFileSync(file, doc);
