// The checks the test command runs (tests/it/openapi.rs): each committed
// OpenAPI document is valid OpenAPI 3.1, each committed TypeScript file is
// what its generator makes of the committed document or SDL, and all of
// them, with usage.ts, compile under tsc --strict. Prints one line per
// problem (on stderr) and exits 1 when there is one.
//
//   node check.mjs                     the committed documents
//   node check.mjs --documents DIR     documents in DIR against the committed TypeScript
//                                      (how a test shows a stale file is caught)
import { readFileSync } from "node:fs";
import path from "node:path";
import SwaggerParser from "@apidevtools/swagger-parser";
import ts from "typescript";
import { documents, render, root } from "./lib.mjs";

const at = process.argv.indexOf("--documents");
const dir = at > 0 ? path.resolve(process.argv[at + 1]) : undefined;
const problems = [];
for (const document of documents(dir)) {
  const name = path.relative(root, document);
  try {
    const api = await SwaggerParser.validate(document);
    if (!String(api.openapi).startsWith("3.1")) problems.push(`${name}: OpenAPI ${api.openapi}, not 3.1`);
  } catch (error) {
    problems.push(`${name}: not valid OpenAPI 3.1: ${error.message}`);
  }
}
const files = await render(dir);
for (const file of files) {
  const name = path.relative(root, file.path);
  let committed = "";
  try {
    committed = readFileSync(file.path, "utf8");
  } catch {
    problems.push(`${name}: missing; run \`npm --prefix tests/openapi run generate\``);
    continue;
  }
  if (committed !== file.text) {
    problems.push(`${name}: differs from what its source generates; run \`npm --prefix tests/openapi run generate\` and commit it`);
  }
}
const program = ts.createProgram(
  [...files.map((f) => f.path), path.join(root, "tests/openapi/usage.ts")],
  { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, skipLibCheck: true },
);
for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
  const where = diagnostic.file ? path.relative(root, diagnostic.file.fileName) : "tsc";
  problems.push(`${where}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, " ")}`);
}
for (const problem of problems) console.error(problem);
console.log(problems.length === 0 ? "openapi checks: ok" : `openapi checks: ${problems.length} problem(s)`);
process.exit(problems.length === 0 ? 0 : 1);
