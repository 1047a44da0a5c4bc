# The CPU build of the addon for node-gyp users; mirrors CMakeLists.txt (which cmake-js
# uses and which also builds the CUDA kernels). LibTorch paths default to Debian's
# libtorch-dev; set TORCH_INCLUDE and TORCH_LIB for another LibTorch. Distributed training
# is built when c10d's ProcessGroupGloo.hpp and the Gloo headers (libgloo-dev) are there.
{
  "variables": {
    "torch_include%": "<!(node -p \"process.env.TORCH_INCLUDE || '/usr/include'\")",
    "torch_lib%": "<!(node -p \"process.env.TORCH_LIB || '/usr/lib/x86_64-linux-gnu'\")",
    "with_distributed%": "<!(node -p \"const fs = require('fs'); const inc = process.env.TORCH_INCLUDE || '/usr/include'; fs.existsSync(inc + '/torch/csrc/distributed/c10d/ProcessGroupGloo.hpp') && fs.existsSync('/usr/include/gloo/config.h') ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "dropattack",
      "sources": ["<!@(node scripts/gyp-sources.js)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native",
        "<(torch_include)",
        "<(torch_include)/torch/csrc/api/include"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "_GLIBCXX_USE_CXX11_ABI=1"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O3", "-ffp-contract=off", "-fopenmp", "-Wno-unused-parameter"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-L<(torch_lib)", "-ltorch", "-ltorch_cpu", "-lc10", "-Wl,-rpath,<(torch_lib)"],
      "conditions": [
        ["with_distributed==1", {
          "defines": ["DROPATTACK_WITH_DISTRIBUTED=1", "USE_C10D_GLOO=1"]
        }]
      ]
    }
  ]
}
