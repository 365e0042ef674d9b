// Runs after `vite build`: writes a .gz and a .br beside every text file of dist/ (the
// Rust server sends them as they are to clients that accept them), prints what the
// dashboard's first page costs gzipped, and fails the build past its budget.
//
// Reproducible on purpose: Node's gzip writes no timestamp or file name, brotli has no
// header fields, and files are visited in sorted order, so two builds of the same
// sources give the same bytes (CI rebuilds and diffs dist/).
import { readFileSync, writeFileSync, readdirSync, statSync, rmSync } from 'node:fs';
import { join, relative, extname } from 'node:path';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';

const dist = new URL('../dist/', import.meta.url).pathname;
const TEXT = new Set(['.html', '.js', '.css', '.svg', '.webmanifest', '.json']);
const BUDGET = 300 * 1024;

function walk(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? walk(path) : [path];
    });
}

// The gzip header's OS byte is whatever zlib was compiled for; it is set to Unix (3) so a
// build on another system gives the same bytes too.
const gz = (bytes) => {
  const out = gzipSync(bytes, { level: 9 });
  out[9] = 3;
  return out;
};
const br = (bytes) =>
  brotliCompressSync(bytes, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  });

// A previous run's siblings would otherwise be compressed again.
for (const path of walk(dist)) {
  if (path.endsWith('.gz') || path.endsWith('.br')) rmSync(path);
}

const gzipped = new Map();
for (const path of walk(dist)) {
  if (!TEXT.has(extname(path))) continue;
  const bytes = readFileSync(path);
  const g = gz(bytes);
  writeFileSync(path + '.gz', g);
  writeFileSync(path + '.br', br(bytes));
  gzipped.set('/' + relative(dist, path), g.length);
}

// The first page is index.html and every script and stylesheet it names: the entry and
// its modulepreloads. Routes loaded later are not on it.
const html = readFileSync(join(dist, 'index.html'), 'utf8');
const firstPage = ['/index.html', ...new Set([...html.matchAll(/(?:src|href)="(\/assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]))];
let total = 0;
console.log('\nfirst page, gzipped:');
for (const file of firstPage) {
  const size = gzipped.get(file);
  if (size === undefined) throw new Error(`index.html names ${file}, which is not in dist/`);
  total += size;
  console.log(`  ${(size / 1024).toFixed(1).padStart(7)} KB  ${file}`);
}
console.log(`  ${(total / 1024).toFixed(1).padStart(7)} KB  total (budget ${BUDGET / 1024} KB)`);
if (total > BUDGET) {
  console.error(`the dashboard's first page is ${total} bytes gzipped, over the ${BUDGET}-byte budget`);
  process.exit(1);
}
