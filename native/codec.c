/*
 * Compressed units (qcow2 clusters, VMDK grains) decoded and encoded on
 * libuv's thread pool, the way qemu-img's block layer runs them on its own:
 * one request per batch of units, no JavaScript per unit, output written in
 * place. The mirror of src/core/codec-kernels.ts, which stays the portable
 * path (worker threads) and defines the semantics these functions keep.
 *   decodeBatch(codec, input, pieces, unit, out) -> Promise<{ produced, failedIndex?, message? }>
 *     codec 0 deflate-raw (qcow2), 1 zlib (VMDK grains), 2 zstd (qcow2); pieces is a Float64Array
 *     of [at, length, outAt, from, count] per unit: unit bytes decoded from input[at, at+length),
 *     bytes [from, from+count) of the unit copied to out at outAt
 *   encodeUnit(codec, data) -> Promise<Uint8Array>
 *   encodeUnits(codec, data, unit, skipZeros, out, sizes) -> Promise<number>: every unit of data
 *     (a whole number of units) compressed in one request, the outputs packed back to back in out
 *     (at least data's length) in unit order, sizes[i] (an Int32Array) the bytes unit i took there,
 *     0 for a unit that does not compress below a unit (stored plain, as QEMU does) or -1 for an
 *     all-zero unit when skipZeros; resolves with the packed length
 *   zstdAvailable() -> boolean: libzstd.so.1 could be loaded
 * zlib is the one Node carries (its headers ship with Node and its symbols are exported to
 * addons); zstd is the system's libzstd, loaded on first use, as Node 20 has none. Deflate
 * units decode through the system's libdeflate when it is there (about twice zlib's speed on
 * whole units): a unit it decodes whole is what zlib would give, and anything else (damaged,
 * truncated, longer than the unit) goes through zlib, whose answers define the semantics.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "codec.h"

enum { CODEC_DEFLATE_RAW = 0, CODEC_ZLIB = 1, CODEC_ZSTD = 2 };

/* zstd's default level, which QEMU uses; the largest window accepted for frames without a content size. */
#define ZSTD_LEVEL 3
#define MAX_ZSTD_WINDOW (8u * 1024 * 1024)
#define MAX_UNIT (64u * 1024 * 1024)

/* The stable part of libzstd's ABI this module calls. */
static struct {
  int ok;
  void *(*create_dctx)(void);
  size_t (*decompress_dctx)(void *, void *, size_t, const void *, size_t);
  void *(*create_cctx)(void);
  size_t (*compress_cctx)(void *, void *, size_t, const void *, size_t, int);
  size_t (*compress_bound)(size_t);
  unsigned (*is_error)(size_t);
} zs;
static pthread_once_t zs_once = PTHREAD_ONCE_INIT;

static void zs_load(void) {
  if (getenv("VDISK_NO_NATIVE_ZSTD")) return;
  void *h = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) return;
  *(void **)&zs.create_dctx = dlsym(h, "ZSTD_createDCtx");
  *(void **)&zs.decompress_dctx = dlsym(h, "ZSTD_decompressDCtx");
  *(void **)&zs.create_cctx = dlsym(h, "ZSTD_createCCtx");
  *(void **)&zs.compress_cctx = dlsym(h, "ZSTD_compressCCtx");
  *(void **)&zs.compress_bound = dlsym(h, "ZSTD_compressBound");
  *(void **)&zs.is_error = dlsym(h, "ZSTD_isError");
  zs.ok = zs.create_dctx && zs.decompress_dctx && zs.create_cctx && zs.compress_cctx && zs.compress_bound && zs.is_error;
}

static int zstd_ready(void) {
  pthread_once(&zs_once, zs_load);
  return zs.ok;
}

/* The stable part of libdeflate's ABI this module calls (a result of 0 is LIBDEFLATE_SUCCESS). */
static struct {
  int ok;
  void *(*alloc)(void);
  int (*deflate_ex)(void *, const void *, size_t, void *, size_t, size_t *, size_t *);
  int (*zlib_ex)(void *, const void *, size_t, void *, size_t, size_t *, size_t *);
} ld;
static pthread_once_t ld_once = PTHREAD_ONCE_INIT;

static void ld_load(void) {
  if (getenv("VDISK_NO_LIBDEFLATE")) return;
  void *h = dlopen("libdeflate.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!h) return;
  *(void **)&ld.alloc = dlsym(h, "libdeflate_alloc_decompressor");
  *(void **)&ld.deflate_ex = dlsym(h, "libdeflate_deflate_decompress_ex");
  *(void **)&ld.zlib_ex = dlsym(h, "libdeflate_zlib_decompress_ex");
  ld.ok = ld.alloc && ld.deflate_ex && ld.zlib_ex;
}

/* Per pool thread, reused across requests (the pool's threads live as long as the process). */
static __thread void *tl_dctx, *tl_cctx, *tl_ld;
static __thread z_stream *tl_inflate, *tl_deflate[2];
static __thread uint8_t *tl_unit;
static __thread size_t tl_unit_size;

static uint8_t *scratch(size_t n) {
  if (tl_unit_size >= n) return tl_unit;
  uint8_t *p = realloc(tl_unit, n);
  if (!p) return NULL;
  tl_unit = p;
  tl_unit_size = n;
  return p;
}

/* A whole stream that ends inside dst[0, cap), decoded by libdeflate; 0 when it is not that. */
static int fast_inflate(int codec, const uint8_t *in, size_t n, uint8_t *dst, size_t cap, size_t *produced) {
  pthread_once(&ld_once, ld_load);
  if (!ld.ok || (!tl_ld && !(tl_ld = ld.alloc()))) return 0;
  size_t used;
  /* With the lengths asked for, data after the stream and a stream shorter than dst are allowed, as with zlib. */
  int r = (codec == CODEC_ZLIB ? ld.zlib_ex : ld.deflate_ex)(tl_ld, in, n, dst, cap, &used, produced);
  return r == 0;
}

/* Inflates `in` into dst[0, cap): windowBits 15 with a zlib header (VMDK), -15 raw (qcow2). */
static const char *inflate_unit(int codec, const uint8_t *in, size_t n, uint8_t *dst, size_t cap, size_t *produced) {
  if (fast_inflate(codec, in, n, dst, cap, produced)) return NULL;
  int bits = codec == CODEC_ZLIB ? 15 : -15;
  if (!tl_inflate) {
    z_stream *z = calloc(1, sizeof *z);
    if (!z || inflateInit2(z, bits) != Z_OK) { free(z); return "out of memory"; }
    tl_inflate = z;
  } else if (inflateReset2(tl_inflate, bits) != Z_OK) {
    return "zlib reset failed";
  }
  z_stream *z = tl_inflate;
  z->next_in = (Bytef *)in;
  z->avail_in = (uInt)n;
  z->next_out = dst;
  z->avail_out = (uInt)cap;
  int ret = inflate(z, Z_FINISH);
  *produced = cap - z->avail_out;
  if (ret == Z_STREAM_END) return NULL;
  if (z->avail_out > 0) return ret == Z_DATA_ERROR ? "invalid compressed data" : "unexpected end of file";
  if (codec == CODEC_DEFLATE_RAW) return ret == Z_BUF_ERROR ? NULL : "invalid compressed data"; /* QEMU: a full cluster is enough */
  /* A grain may not inflate past the grain: one byte more of room tells whether the stream ends here. */
  uint8_t extra;
  z->next_out = &extra;
  z->avail_out = 1;
  ret = inflate(z, Z_FINISH);
  return ret == Z_STREAM_END && z->avail_out == 1 ? NULL : "the grain inflates to more than a grain";
}

static uint64_t rd(const uint8_t *b, size_t len, size_t p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v * 256 + (p + (size_t)i < len ? b[p + (size_t)i] : 0);
  return v;
}

typedef struct {
  size_t end;
  int has_size, skippable;
  uint64_t content_size, window;
} Frame;

/* Walks one zstd frame (header and block headers) to find where it ends: qcow2 stores no exact length. */
static const char *frame_at(const uint8_t *b, size_t len, size_t p, Frame *f) {
  memset(f, 0, sizeof *f);
  uint32_t magic = (uint32_t)rd(b, len, p, 4);
  if ((magic >> 4) == 0x184d2a5u) {
    f->end = p + 8 + (size_t)rd(b, len, p + 4, 4);
    f->skippable = 1;
    f->has_size = 1;
    return NULL;
  }
  if (magic != 0xfd2fb528u) return "bad zstd frame magic";
  uint8_t fhd = p + 4 < len ? b[p + 4] : 0;
  int single = (fhd >> 5) & 1, fcs_flag = fhd >> 6;
  size_t q = p + 5;
  if (!single) {
    uint8_t wd = q < len ? b[q] : 0;
    q++;
    uint64_t base = (uint64_t)1 << (10 + (wd >> 3));
    f->window = base + (base / 8) * (wd & 7);
  }
  static const int did_bytes[4] = { 0, 1, 2, 4 };
  q += (size_t)did_bytes[fhd & 3];
  int fcs_bytes = fcs_flag == 0 ? single : 1 << fcs_flag;
  if (fcs_bytes > 0) {
    f->has_size = 1;
    f->content_size = rd(b, len, q, fcs_bytes) + (fcs_bytes == 2 ? 256 : 0);
  }
  q += (size_t)fcs_bytes;
  for (;;) {
    if (q + 3 > len) return "truncated zstd frame";
    uint32_t h = (uint32_t)rd(b, len, q, 3);
    int type = (h >> 1) & 3;
    if (type == 3) return "reserved zstd block type";
    q += 3 + (type == 1 ? 1 : (h >> 3));
    if (q > len) return "truncated zstd frame";
    if (h & 1) break;
  }
  if ((fhd >> 2) & 1) q += 4;
  if (q > len) return "truncated zstd frame";
  f->end = q;
  if (single) f->window = f->content_size;
  return NULL;
}

/* Decodes zstd frames until dst is full (QEMU ignores what follows). */
static const char *zstd_unit(const uint8_t *in, size_t n, uint8_t *dst, size_t cap, size_t *produced) {
  if (!tl_dctx && !(tl_dctx = zs.create_dctx())) return "out of memory";
  size_t pos = 0, out = 0;
  while (out < cap) {
    if (pos >= n) return "zstd data ended before a full cluster";
    Frame f;
    const char *err = frame_at(in, n, pos, &f);
    if (err) return err;
    size_t start = pos;
    pos = f.end;
    if (f.skippable || (f.has_size && f.content_size == 0)) continue;
    if (f.has_size && f.content_size > cap - out) return "zstd frame larger than a cluster";
    if (!f.has_size && f.window > MAX_ZSTD_WINDOW) return "zstd window too large";
    size_t r = zs.decompress_dctx(tl_dctx, dst + out, cap - out, in + start, f.end - start);
    if (zs.is_error(r)) return f.has_size ? "damaged zstd frame" : "zstd frame larger than a cluster or damaged";
    if (f.has_size && r != f.content_size) return "zstd frame content size mismatch";
    out += r;
  }
  *produced = out;
  return NULL;
}

/* One unit into dst[0, cap), zero-filled past what it decoded; a qcow2 cluster must come out whole. */
static const char *decode_unit(int codec, const uint8_t *in, size_t n, uint8_t *dst, size_t cap, size_t *produced) {
  *produced = 0;
  const char *err = codec == CODEC_ZSTD ? zstd_unit(in, n, dst, cap, produced) : inflate_unit(codec, in, n, dst, cap, produced);
  if (err) return err;
  if (codec == CODEC_DEFLATE_RAW && *produced != cap) return "short output";
  memset(dst + *produced, 0, cap - *produced);
  return NULL;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int codec, encode; /* encode: 1 one unit (encodeUnit), 2 a run of units (encodeUnits) */
  int skip_zeros;
  int32_t *sizes;
  const uint8_t *input;
  size_t input_len;
  napi_ref input_ref, out_ref, sizes_ref;
  double *pieces;
  size_t npieces, unit;
  uint8_t *out;
  size_t out_len;
  size_t *produced;
  size_t ndone;
  const char *message; /* the failure of piece ndone, if any */
  uint8_t *encoded;
  size_t encoded_len;
} CodecWork;

static void decode_batch(CodecWork *w) {
  uint8_t *unit = NULL;
  for (w->ndone = 0; w->ndone < w->npieces; w->ndone++) {
    const double *p = w->pieces + 5 * w->ndone;
    size_t at = (size_t)p[0], len = (size_t)p[1], out_at = (size_t)p[2], from = (size_t)p[3], count = (size_t)p[4];
    /* The caller's numbers are checked against the buffers here: nothing is read or written outside them. */
    if (at > w->input_len || len > w->input_len - at || from > w->unit || count > w->unit - from || out_at > w->out_len || count > w->out_len - out_at) {
      w->message = "piece outside its buffers";
      return;
    }
    /* A whole unit decodes straight into the output; a part of one goes through the scratch unit. */
    int whole = from == 0 && count == w->unit;
    uint8_t *dst = whole ? w->out + out_at : (unit ? unit : (unit = scratch(w->unit)));
    if (!dst) { w->message = "out of memory"; return; }
    size_t n;
    w->message = decode_unit(w->codec, w->input + at, len, dst, w->unit, &n);
    if (w->message) return;
    w->produced[w->ndone] = n;
    if (!whole) memcpy(w->out + out_at, dst + from, count);
  }
}

/*
 * Compresses in[0, n) into dst[0, cap) (cap at least the codec's bound): zstd at its default level
 * as QEMU's qcow2 does, deflate as node:zlib's deflateRawSync({ windowBits: 12, memLevel: 9 }) (QEMU's
 * qcow2 clusters) and deflateSync() (VMDK grains) make it. The contexts live per pool thread.
 */
static const char *compress_into(int codec, const uint8_t *in, size_t n, uint8_t *dst, size_t cap, size_t *len) {
  if (codec == CODEC_ZSTD) {
    if (!tl_cctx && !(tl_cctx = zs.create_cctx())) return "out of memory";
    size_t r = zs.compress_cctx(tl_cctx, dst, cap, in, n, ZSTD_LEVEL);
    if (zs.is_error(r)) return "zstd compression failed";
    *len = r;
    return NULL;
  }
  int raw = codec == CODEC_DEFLATE_RAW;
  z_stream *z = tl_deflate[raw];
  if (!z) {
    if (!(z = calloc(1, sizeof *z))) return "out of memory";
    if (deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, raw ? -12 : 15, raw ? 9 : 8, Z_DEFAULT_STRATEGY) != Z_OK) { free(z); return "out of memory"; }
    tl_deflate[raw] = z;
  } else if (deflateReset(z) != Z_OK) {
    return "zlib reset failed";
  }
  z->next_in = (Bytef *)in;
  z->avail_in = (uInt)n;
  z->next_out = dst;
  z->avail_out = (uInt)cap;
  int ret = deflate(z, Z_FINISH);
  *len = cap - z->avail_out;
  return ret == Z_STREAM_END ? NULL : "compression failed";
}

/* The most bytes compress_into() may need for n bytes of input. */
static size_t compress_bound(int codec, size_t n) {
  if (codec == CODEC_ZSTD) return zs.compress_bound(n);
  /* zlib's deflateBound() for parameters other than its defaults, with a zlib header and trailer */
  return n + ((n + 7) >> 3) + ((n + 63) >> 6) + 5 + 6 + 4;
}

static void encode_unit(CodecWork *w) {
  size_t cap = compress_bound(w->codec, w->input_len);
  if (!(w->encoded = malloc(cap))) { w->message = "out of memory"; return; }
  w->message = compress_into(w->codec, w->input, w->input_len, w->encoded, cap, &w->encoded_len);
}

static int all_zero(const uint8_t *p, size_t n) {
  return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* encodeUnits: each unit through a per-thread scratch buffer, kept when it came out smaller than a unit. */
static void encode_units(CodecWork *w) {
  size_t unit = w->unit, count = w->input_len / unit, pos = 0;
  uint8_t *dst = scratch(compress_bound(w->codec, unit));
  if (!dst) { w->message = "out of memory"; return; }
  for (size_t i = 0; i < count; i++) {
    const uint8_t *in = w->input + i * unit;
    int32_t size = -1;
    if (!w->skip_zeros || !all_zero(in, unit)) {
      size_t len;
      w->message = compress_into(w->codec, in, unit, dst, compress_bound(w->codec, unit), &len);
      if (w->message) return;
      size = len < unit ? (int32_t)len : 0;
      if (size > 0) memcpy(w->out + pos, dst, len);
      pos += (size_t)(size > 0 ? size : 0);
    }
    w->sizes[i] = size;
  }
  w->encoded_len = pos;
}

static void codec_execute(napi_env env, void *data) {
  (void)env;
  CodecWork *w = data;
  if (w->encode == 2) encode_units(w);
  else if (w->encode) encode_unit(w);
  else decode_batch(w);
}

static void codec_complete(napi_env env, napi_status status, void *data) {
  CodecWork *w = data;
  napi_value result, v;
  if (status != napi_ok && !w->message) w->message = "the request was cancelled";
  if (w->encode == 2 && !w->message) {
    napi_create_double(env, (double)w->encoded_len, &result);
    napi_resolve_deferred(env, w->deferred, result);
  } else if (w->encode) {
    if (w->message) {
      napi_value msg;
      napi_create_string_utf8(env, w->message, NAPI_AUTO_LENGTH, &msg);
      napi_create_error(env, NULL, msg, &result);
      napi_reject_deferred(env, w->deferred, result);
    } else {
      void *bytes = NULL;
      napi_value ab;
      napi_create_arraybuffer(env, w->encoded_len, &bytes, &ab);
      if (w->encoded_len) memcpy(bytes, w->encoded, w->encoded_len);
      napi_create_typedarray(env, napi_uint8_array, w->encoded_len, ab, 0, &result);
      napi_resolve_deferred(env, w->deferred, result);
    }
  } else {
    napi_create_object(env, &result);
    napi_create_array_with_length(env, w->ndone, &v);
    for (size_t i = 0; i < w->ndone; i++) {
      napi_value n;
      napi_create_double(env, (double)w->produced[i], &n);
      napi_set_element(env, v, (uint32_t)i, n);
    }
    napi_set_named_property(env, result, "produced", v);
    if (w->message) {
      napi_create_double(env, (double)w->ndone, &v);
      napi_set_named_property(env, result, "failedIndex", v);
      napi_create_string_utf8(env, w->message, NAPI_AUTO_LENGTH, &v);
      napi_set_named_property(env, result, "message", v);
    }
    napi_resolve_deferred(env, w->deferred, result);
  }
  if (w->input_ref) napi_delete_reference(env, w->input_ref);
  if (w->out_ref) napi_delete_reference(env, w->out_ref);
  if (w->sizes_ref) napi_delete_reference(env, w->sizes_ref);
  napi_delete_async_work(env, w->work);
  free(w->pieces);
  free(w->produced);
  free(w->encoded);
  free(w);
}

static napi_value queue(napi_env env, CodecWork *w, const char *name) {
  napi_value promise, n;
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &n);
  napi_create_async_work(env, NULL, n, codec_execute, codec_complete, w, &w->work);
  napi_queue_async_work(env, w->work);
  return promise;
}

static int bytes_of(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  return napi_get_typedarray_info(env, v, &type, len, (void **)data, &ab, &offset) != napi_ok || type != napi_uint8_array;
}

static napi_value fail(napi_env env, CodecWork *w, const char *message) {
  if (w) {
    free(w->pieces);
    free(w->produced);
    free(w);
  }
  napi_throw_error(env, "EINVAL", message);
  return NULL;
}

napi_value DecodeBatch(napi_env env, napi_callback_info info) {
  static const char *usage = "decodeBatch(codec, input, pieces, unit, out)";
  size_t argc = 5;
  napi_value argv[5];
  int32_t codec, unit;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 || napi_get_value_int32(env, argv[0], &codec) != napi_ok ||
      napi_get_value_int32(env, argv[3], &unit) != napi_ok || codec < 0 || codec > 2 || unit <= 0 || (uint32_t)unit > MAX_UNIT) {
    return fail(env, NULL, usage);
  }
  if (codec == CODEC_ZSTD && !zstd_ready()) return fail(env, NULL, "zstd is not available");
  CodecWork *w = calloc(1, sizeof *w);
  if (!w) return fail(env, NULL, "out of memory");
  w->codec = codec;
  w->unit = (size_t)unit;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset, count;
  double *pieces;
  if (bytes_of(env, argv[1], (uint8_t **)&w->input, &w->input_len) || bytes_of(env, argv[4], &w->out, &w->out_len) ||
      napi_get_typedarray_info(env, argv[2], &type, &count, (void **)&pieces, &ab, &offset) != napi_ok || type != napi_float64_array || count % 5) {
    return fail(env, w, usage);
  }
  w->npieces = count / 5;
  /* The pieces are copied (the caller may reuse its array); the byte buffers are held by references. */
  w->pieces = malloc((count ? count : 1) * sizeof *w->pieces);
  w->produced = calloc(w->npieces ? w->npieces : 1, sizeof *w->produced);
  if (!w->pieces || !w->produced) return fail(env, w, "out of memory");
  if (count) memcpy(w->pieces, pieces, count * sizeof *pieces);
  if (napi_create_reference(env, argv[1], 1, &w->input_ref) != napi_ok) return fail(env, w, usage);
  if (napi_create_reference(env, argv[4], 1, &w->out_ref) != napi_ok) {
    napi_delete_reference(env, w->input_ref);
    return fail(env, w, usage);
  }
  return queue(env, w, "decodeBatch");
}

napi_value EncodeUnit(napi_env env, napi_callback_info info) {
  static const char *usage = "encodeUnit(codec, data)";
  size_t argc = 2;
  napi_value argv[2];
  int32_t codec;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || napi_get_value_int32(env, argv[0], &codec) != napi_ok || codec < 0 || codec > 2) {
    return fail(env, NULL, usage);
  }
  if (codec == CODEC_ZSTD && !zstd_ready()) return fail(env, NULL, "zstd is not available");
  CodecWork *w = calloc(1, sizeof *w);
  if (!w) return fail(env, NULL, "out of memory");
  w->codec = codec;
  w->encode = 1;
  if (bytes_of(env, argv[1], (uint8_t **)&w->input, &w->input_len) || w->input_len > MAX_UNIT) return fail(env, w, usage);
  if (napi_create_reference(env, argv[1], 1, &w->input_ref) != napi_ok) return fail(env, w, usage);
  return queue(env, w, "encodeUnit");
}

napi_value ZstdAvailable(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_get_boolean(env, zstd_ready(), &v);
  return v;
}

napi_value EncodeUnits(napi_env env, napi_callback_info info) {
  static const char *usage = "encodeUnits(codec, data, unit, skipZeros, out, sizes)";
  size_t argc = 6;
  napi_value argv[6];
  int32_t codec, unit;
  bool skip;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 || napi_get_value_int32(env, argv[0], &codec) != napi_ok ||
      napi_get_value_int32(env, argv[2], &unit) != napi_ok || napi_get_value_bool(env, argv[3], &skip) != napi_ok || codec < 0 || codec > 2 || unit <= 0 ||
      (uint32_t)unit > MAX_UNIT) {
    return fail(env, NULL, usage);
  }
  if (codec == CODEC_ZSTD && !zstd_ready()) return fail(env, NULL, "zstd is not available");
  CodecWork *w = calloc(1, sizeof *w);
  if (!w) return fail(env, NULL, "out of memory");
  w->codec = codec;
  w->encode = 2;
  w->unit = (size_t)unit;
  w->skip_zeros = skip;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset, count;
  /* Checked here, once: the units, the room for their outputs and one size each. */
  if (bytes_of(env, argv[1], (uint8_t **)&w->input, &w->input_len) || bytes_of(env, argv[4], &w->out, &w->out_len) ||
      napi_get_typedarray_info(env, argv[5], &type, &count, (void **)&w->sizes, &ab, &offset) != napi_ok || type != napi_int32_array ||
      w->input_len % w->unit || w->out_len < w->input_len || count < w->input_len / w->unit) {
    return fail(env, w, usage);
  }
  if (napi_create_reference(env, argv[1], 1, &w->input_ref) != napi_ok) return fail(env, w, usage);
  napi_create_reference(env, argv[4], 1, &w->out_ref);
  napi_create_reference(env, argv[5], 1, &w->sizes_ref);
  return queue(env, w, "encodeUnits");
}
