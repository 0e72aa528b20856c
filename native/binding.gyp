{
  "targets": [
    {
      "target_name": "vdisk_native",
      "sources": ["vdisk_native.c", "codec.c", "nbd_reader.c"],
      "libraries": ["-ldl"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
