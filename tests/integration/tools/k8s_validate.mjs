// Validates Kubernetes objects against the API schemas, offline, with npm's
// kubernetes-models (and @kubernetes-models/prometheus-operator for the PodMonitor).
//   node k8s_validate.mjs NODE_MODULES_DIR < objects.json      (a JSON array of objects)
// Prints "ok KIND NAME" per valid object, "invalid KIND NAME: why" otherwise, and exits 1
// if any object is invalid or of a kind no installed model knows.
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";

const modules = process.argv[2];
const objects = JSON.parse(readFileSync(0, "utf8"));

function modelPath(apiVersion, kind) {
  if (apiVersion.startsWith("monitoring.coreos.com/"))
    return `${modules}/@kubernetes-models/prometheus-operator/${apiVersion}/${kind}.js`;
  return `${modules}/kubernetes-models/${apiVersion}/${kind}.js`;
}

let bad = 0;
for (const obj of objects) {
  const what = `${obj.kind} ${obj.metadata && obj.metadata.name}`;
  let mod;
  try {
    mod = await import(pathToFileURL(modelPath(obj.apiVersion, obj.kind)).href);
  } catch (e) {
    console.log(`invalid ${what}: no model for ${obj.apiVersion} ${obj.kind}`);
    bad++;
    continue;
  }
  try {
    new mod[obj.kind](obj).validate();
    console.log(`ok ${what}`);
  } catch (e) {
    console.log(`invalid ${what}: ${e.message}`);
    bad++;
  }
}
process.exit(bad ? 1 : 0);
