/* native/codec.c's functions, registered by vdisk_native.c's Init. */
#ifndef VDISK_CODEC_H
#define VDISK_CODEC_H
#include <node_api.h>
napi_value DecodeBatch(napi_env env, napi_callback_info info);
napi_value EncodeUnit(napi_env env, napi_callback_info info);
napi_value EncodeUnits(napi_env env, napi_callback_info info);
napi_value ZstdAvailable(napi_env env, napi_callback_info info);
#endif
