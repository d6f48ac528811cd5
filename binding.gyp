{
  "targets": [
    {
      "target_name": "ontap_native",
      "sources": [
        "native/module.cc",
        "native/common.cc",
        "native/socket.cc",
        "native/message.cc",
        "native/inet.cc",
        "native/poller.cc",
        "native/netns.cc",
        "native/process.cc",
        "native/device.cc",
        "native/closer.cc",
        "native/uts.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fno-exceptions"]
    }
  ]
}
