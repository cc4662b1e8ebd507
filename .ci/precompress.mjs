// Writes `<file>.br` (brotli, best) and `<file>.gz` (gzip -9) beside every file in a directory,
// so the server sends them precompressed. Node's own zlib: nothing to install.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const dir = process.argv[2];
for (const name of readdirSync(dir)) {
  const path = join(dir, name);
  const data = readFileSync(path);
  writeFileSync(
    `${path}.br`,
    brotliCompressSync(data, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      },
    }),
  );
  writeFileSync(`${path}.gz`, gzipSync(data, { level: 9 }));
}
