// Regenerates README.md's configuration table from the typed schema (libs/config).
import { readFileSync, writeFileSync } from 'node:fs';
import { configTableMarkdown } from '@relay/config';

const readme = readFileSync('README.md', 'utf8');
const updated = readme.replace(
  /<!-- config-table:start -->[\s\S]*?<!-- config-table:end -->/,
  `<!-- config-table:start -->\n${configTableMarkdown()}\n<!-- config-table:end -->`,
);
writeFileSync('README.md', updated);
