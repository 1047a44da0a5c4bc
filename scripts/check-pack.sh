#!/usr/bin/env bash
# The package as users get it: `npm pack` (prepack compiles dist/), a look at what the tarball
# holds, `npm install <tarball>` in an empty project (the install script builds the addon
# against the LibTorch it finds, or uses a prebuild), then in that project one DropAttack
# training step with a finite loss and `npx dropattack --help`. Prints the time of each part.
# Needs the npm registry (the package's dependencies) and a LibTorch (see README, Install).
#   --prebuild  put this checkout's build/Release/dropattack.node into the tarball as
#               prebuilds/<platform>-<arch>/dropattack.node, and check that it is the one used
#               (no build at install: a quick run of the prebuild path).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
prebuild=
case "${1:-}" in
  --prebuild) prebuild=1 ;;
  '') ;;
  *) echo "usage: scripts/check-pack.sh [--prebuild]" >&2; exit 2 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/pack" "$work/app"
say() { printf 'check-pack: %s\n' "$*"; }
t_start=$SECONDS
t=$SECONDS
lap() { say "$1 ($((SECONDS - t)) s)"; t=$SECONDS; }

npm pack --silent --pack-destination "$work/pack" >"$work/pack.log" 2>&1 || {
  tail -40 "$work/pack.log" >&2
  exit 1
}
tarball=$(ls "$work"/pack/dropattack-*.tgz)
if [ -n "$prebuild" ]; then
  [ -f build/Release/dropattack.node ] || { say "--prebuild: no build/Release/dropattack.node here (run scripts/setup.sh)" >&2; exit 1; }
  platform=$(node -p 'process.platform + "-" + process.arch')
  mkdir -p "$work/unpacked/package/prebuilds/$platform"
  tar xzf "$tarball" -C "$work/unpacked"
  cp build/Release/dropattack.node "$work/unpacked/package/prebuilds/$platform/"
  tar czf "$tarball" -C "$work/unpacked" package
fi
tar tzf "$tarball" | sed 's|^package/||' | sort >"$work/contents"
for f in package.json dist/lib/index.js dist/lib/index.d.ts dist/lib/app/cli.js CMakeLists.txt binding.gyp \
  scripts/install.js scripts/find-torch.js scripts/gyp-sources.js native/binding/addon.cc README.md; do
  grep -qxF "$f" "$work/contents" || { say "the tarball lacks $f" >&2; exit 1; }
done
if grep -E '^(build|test|node_modules|bench|examples|dist/test|dist/examples)/' "$work/contents" | head -5 | grep .; then
  say "the tarball holds files it should not (above)" >&2
  exit 1
fi
lap "packed $(basename "$tarball"): $(wc -l <"$work/contents") files, $(du -k "$tarball" | cut -f1) KiB"

repo=$PWD
cd "$work/app"
npm init -y >/dev/null
npm install --no-audit --no-fund --foreground-scripts "$tarball" >"$work/install.log" 2>&1 || {
  tail -60 "$work/install.log" >&2
  say "npm install of the tarball failed" >&2
  exit 1
}
grep '^dropattack:' "$work/install.log" || true
if [ -n "$prebuild" ]; then
  grep -q '^dropattack: using the prebuilt prebuilds/' "$work/install.log" || { say "the prebuild was not used" >&2; exit 1; }
  [ ! -e node_modules/dropattack/build ] || { say "a build ran although a prebuild fits" >&2; exit 1; }
fi
lap "npm install of the tarball"

# One DropAttack step on a small MLP; prints the losses as JSON. argv[1]: what to require.
step_js='
const assert = require("assert");
const da = require(process.argv[1]);
(async () => {
  const model = da.Module.build({ kind: "mlp", inputDim: 4, hiddenSizes: [8], numClasses: 2 }, { seed: 1 });
  const trainer = new da.Trainer(model, {
    optimizer: { type: "sgd", lr: 0.1 },
    loss: { type: "crossEntropy" },
    attack: { method: "dropattack", k: 1, seed: 7, groups: [{ targets: "fc1.weight", epsilon: 0.5, p: 0.5 }] },
  });
  const x = da.randn([16, 4], { generator: new da.Generator(3) });
  const y = da.randint(0, 2, [16], { generator: new da.Generator(4) });
  const r = await trainer.step([x], y);
  assert(Number.isFinite(r.cleanLoss) && r.cleanLoss > 0, `clean loss ${r.cleanLoss}`);
  assert(r.groupLosses.length === 1 && Number.isFinite(r.groupLosses[0]), `group losses ${r.groupLosses}`);
  assert(r.applied, "the step was not applied");
  console.log(JSON.stringify({ cleanLoss: r.cleanLoss, groupLosses: r.groupLosses, libtorch: da.backends().libtorch }));
})().catch((e) => { console.error(e); process.exit(1); });
'
result=$(node -e "$step_js" dropattack)
say "one DropAttack step in the installed package: $result"
# The same step with this checkout's build, when there is one: the same numbers, bit for bit.
if [ -f "$repo/dist/lib/index.js" ] && [ -f "$repo/build/Release/dropattack.node" ] &&
  [ -z "$(cd "$repo" && find native CMakeLists.txt -newer build/Release/dropattack.node -type f -print -quit)" ]; then
  reference=$(node -e "$step_js" "$repo/dist/lib/index.js")
  [ "$result" = "$reference" ] || { say "the checkout's build gives $reference" >&2; exit 1; }
  say "the checkout's build gives the same"
fi
# The subpaths of the exports map resolve, and internals stay inside.
node -e '
const assert = require("assert");
assert.strictEqual(typeof require("dropattack/data").readTextDataset, "function", "dropattack/data");
assert.strictEqual(typeof require("dropattack/logging").JsonlLogger, "function", "dropattack/logging");
assert.strictEqual(typeof require("dropattack/ops").philox4x32, "function", "dropattack/ops");
assert.throws(() => require("dropattack/dist/lib/data/csv"), { code: "ERR_PACKAGE_PATH_NOT_EXPORTED" });
' || { say "the exports map does not resolve as documented" >&2; exit 1; }
npx --no-install dropattack --help >"$work/help.txt"
grep -q '^usage:' "$work/help.txt" || { cat "$work/help.txt" >&2; say "dropattack --help printed no usage" >&2; exit 1; }
lap "require + training step + npx dropattack --help"
say "ok in $((SECONDS - t_start)) s"
