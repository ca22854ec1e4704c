// Validates an OpenAPI document with a real validator (@apidevtools/swagger-parser: the
// OpenAPI 3.0/3.1 JSON schemas plus its own checks, $refs resolved).
//   node validate_openapi.mjs URL_OR_FILE
import SwaggerParser from "@apidevtools/swagger-parser";
import { readFile } from "node:fs/promises";

const [where] = process.argv.slice(2);
const doc = where.startsWith("http") ? await (await fetch(where)).json() : JSON.parse(await readFile(where, "utf8"));
try {
  await SwaggerParser.validate(structuredClone(doc));
} catch (e) {
  console.error("FAIL: openapi.json is not valid OpenAPI " + doc.openapi + ": " + e.message);
  process.exit(1);
}
console.log(`openapi.json: valid OpenAPI ${doc.openapi} (${Object.keys(doc.paths).length} paths)`);
