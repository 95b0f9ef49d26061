// Validate GLB/glTF files with the Khronos glTF-Validator (npm package gltf-validator).
// Usage: node validate.mjs CLIENT_DIR FILE...   (CLIENT_DIR holds node_modules/gltf-validator)
// Prints one JSON report per file; exits 1 if any file has an error (warnings are reported only).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [clientDir, ...files] = process.argv.slice(2);
if (!clientDir || files.length === 0) {
  console.error('usage: node validate.mjs CLIENT_DIR FILE...');
  process.exit(2);
}
const validator = createRequire(path.join(path.resolve(clientDir), 'package.json'))('gltf-validator');

let failed = false;
for (const file of files) {
  const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)), {
    uri: path.basename(file),
    maxIssues: 200,
    externalResourceFunction: (uri) => Promise.resolve(new Uint8Array(fs.readFileSync(path.join(path.dirname(file), uri)))),
  });
  const issues = report.issues;
  failed ||= issues.numErrors > 0;
  console.log(JSON.stringify({
    file,
    validatorVersion: report.validatorVersion,
    errors: issues.numErrors,
    warnings: issues.numWarnings,
    infos: issues.numInfos,
    hints: issues.numHints,
    messages: issues.messages.filter((m) => m.severity <= 1).slice(0, 20),
    textures: report.info && report.info.resources ? report.info.resources.filter((r) => r.image).map((r) => r.image) : [],
  }));
}
process.exit(failed ? 1 : 0);
