// Regenerates the committed TypeScript: openapi/<bff>.ts from
// openapi/<bff>.json, schema/<app>.ts from schema/<app>.graphql.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { render, root } from "./lib.mjs";

for (const file of await render()) {
  writeFileSync(file.path, file.text);
  console.log(`wrote ${path.relative(root, file.path)}`);
}
