// What the committed TypeScript files should hold: generated from each
// BFF's committed OpenAPI document (openapi-typescript) and GraphQL SDL
// (graphql-codegen's typescript plugin).
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import path from "node:path";
import openapiTS, { astToString } from "openapi-typescript";
import { codegen } from "@graphql-codegen/core";
import * as typescriptPlugin from "@graphql-codegen/typescript";
import { buildSchema, parse, printSchema } from "graphql";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The OpenAPI documents: `openapi/<bff>.json`, or in `dir` (a test's). */
export const documents = (dir = path.join(root, "openapi")) =>
  ["bff-web", "bff-mobile"].map((bff) => path.join(dir, `${bff}.json`));

const header = (source, command) =>
  `// Generated from ${source} by ${command}; do not edit.\n`;

/** Every generated file: its path (beside the committed document) and
 * the text it should hold, from the documents in `dir`. */
export async function render(dir) {
  const files = [];
  for (const document of documents(dir)) {
    const ast = await openapiTS(pathToFileURL(document));
    const source = path.join("openapi", path.basename(document));
    files.push({
      path: path.join(root, source.replace(/\.json$/, ".ts")),
      text: header(source, "`npm --prefix tests/openapi run generate`") + astToString(ast),
    });
  }
  for (const name of ["web", "mobile"]) {
    const sdl = path.join(root, "schema", `${name}.graphql`);
    const schema = buildSchema(readFileSync(sdl, "utf8"));
    const output = await codegen({
      schema: parse(printSchema(schema)),
      documents: [],
      filename: `${name}.ts`,
      config: { enumsAsTypes: true, avoidOptionals: false },
      plugins: [{ typescript: {} }],
      pluginMap: { typescript: typescriptPlugin },
    });
    files.push({
      path: path.join(root, "schema", `${name}.ts`),
      text: header(path.relative(root, sdl), "`npm --prefix tests/openapi run generate`") + output,
    });
  }
  return files;
}
