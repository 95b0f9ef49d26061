#!/usr/bin/env bash
# A real glTF client opens the exported mesh: Khronos glTF-Validator (0 errors required), then
# three.js GLTFLoader in headless Chromium from a page served on localhost, a screenshot per
# view, and the screenshot's silhouette IoU against the field's own render from the same view.
#
# usage: examples/gltf_client_check.sh RUN_DIR [GLB] [OUT_DIR]
#   GLB defaults to RUN_DIR/mesh.glb, OUT_DIR to RUN_DIR/gltf_client.
# Installs what is missing: npm packages gltf-validator, three and playwright-core (which drives
# the system chromium; it downloads no browser) into $GLTF_CLIENT_DIR
# (default examples/.gltf-client, ignored by git) and Debian's chromium (apt-get).
# Environment: PYTHON (default python3, needs t3d importable), GLTF_CLIENT_DIR, SIZE (256),
# AZIMUTHS (0,90,180,270).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
run_dir="${1:?usage: $0 RUN_DIR [GLB] [OUT_DIR]}"
glb="${2:-$run_dir/mesh.glb}"
out_dir="${3:-$run_dir/gltf_client}"
client="${GLTF_CLIENT_DIR:-$here/.gltf-client}"
python="${PYTHON:-python3}"

[ -f "$glb" ] || { echo "no GLB at $glb (t3d export-mesh $run_dir --format glb)" >&2; exit 2; }
if [ ! -d "$client/node_modules/gltf-validator" ] || [ ! -d "$client/node_modules/three" ] || [ ! -d "$client/node_modules/playwright-core" ]; then
  mkdir -p "$client"
  npm install --no-audit --no-fund --prefix "$client" gltf-validator three playwright-core >&2
fi
if ! command -v chromium >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y chromium >&2 || { $sudo_cmd apt-get update >&2 && $sudo_cmd apt-get install -y chromium >&2; }
fi

mkdir -p "$out_dir"
echo "glTF-Validator:"
node "$here/gltf_client/validate.mjs" "$client" "$glb" | tee "$out_dir/validator.json"
echo "three.js GLTFLoader in headless Chromium:"
"$python" "$here/gltf_client/screenshot_iou.py" "$run_dir" "$glb" "$client" "$out_dir" \
  --size "${SIZE:-256}" --azimuths "${AZIMUTHS:-0,90,180,270}"
echo "screenshots and report: $out_dir"
