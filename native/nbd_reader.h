/* native/nbd_reader.c's functions, registered by vdisk_native.c's Init. */
#ifndef VDISK_NBD_READER_H
#define VDISK_NBD_READER_H
#include <node_api.h>
napi_value NbdReaderStart(napi_env env, napi_callback_info info);
napi_value NbdReaderRead(napi_env env, napi_callback_info info);
napi_value NbdReaderStop(napi_env env, napi_callback_info info);
/* vdisk_native.c's: an Error "what: strerror(e)" with `code` set to e's name. */
napi_value make_error(napi_env env, int e, const char *what);
#endif
