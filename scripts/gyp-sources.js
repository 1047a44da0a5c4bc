// Prints the CPU sources of the addon for binding.gyp, the same set CMakeLists.txt globs:
// native/binding/*.cc, native/engine/*.cpp and native/engine/methods/*.cpp (tests aside) and the CPU perturbation op and allocator.
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const list = (dir, ext) =>
  fs
    .readdirSync(path.join(root, dir))
    .filter((f) => f.endsWith(ext) && !f.endsWith(`_test${ext}`))
    .sort()
    .map((f) => `${dir}/${f}`);

console.log(
  [...list('native/binding', '.cc'), ...list('native/engine', '.cpp'), ...list('native/engine/methods', '.cpp'), 'native/ops/perturb.cpp', 'native/ops/cpu_cache.cpp', 'native/ops/cpu/perturb_kernel.cpp'].join('\n'),
);
