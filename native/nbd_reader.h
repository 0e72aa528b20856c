/* native/nbd_reader.c's functions, registered by vdisk_native.c's Init. */
#ifndef VDISK_NBD_READER_H
#define VDISK_NBD_READER_H
#include <node_api.h>
napi_value NbdReaderStart(napi_env env, napi_callback_info info);
napi_value NbdReaderRead(napi_env env, napi_callback_info info);
napi_value NbdReaderStop(napi_env env, napi_callback_info info);
#endif
