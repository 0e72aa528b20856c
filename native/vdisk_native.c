/*
 * vdisk's small native module: the Linux file operations Node does not
 * expose. Every function takes a file descriptor from a Node FileHandle.
 *   seek(fd, offset, hole)            SEEK_DATA / SEEK_HOLE; -1 when past the last data (ENXIO)
 *   fallocate(fd, mode, off, len)     -> Promise<void>; mode 0 allocate, 1 punch hole, 2 zero range
 *   setLock(fd, start, len, type)     OFD byte-range lock: type 0 unlock, 1 shared, 2 exclusive; returns 0 or errno
 *   getLock(fd, start, len, type)     the conflicting lock's type (1 shared, 2 exclusive) or 0
 *   copyRange(in, inOff, out, outOff, len) -> Promise<number> bytes copied (copy_file_range)
 *   alignedBuffer(size)               Uint8Array over page-aligned (4096) zeroed memory, for O_DIRECT
 *   directAlignment(fd)               the file's O_DIRECT offset/memory alignment (statx DIOALIGN,
 *                                     else BLKSSZGET for block devices); 0 when unknown
 * Errors are thrown (or rejected) as Error objects with `code` set to the errno name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, "EINVAL", "vdisk_native: bad arguments"); return NULL; } } while (0)

static const char *errno_name(int e) {
  switch (e) {
    case ENXIO: return "ENXIO"; case EBADF: return "EBADF"; case EINVAL: return "EINVAL";
    case EOPNOTSUPP: return "EOPNOTSUPP"; case ENOSPC: return "ENOSPC"; case EIO: return "EIO";
    case EAGAIN: return "EAGAIN"; case EACCES: return "EACCES"; case EXDEV: return "EXDEV";
    case ENOSYS: return "ENOSYS"; case EFBIG: return "EFBIG"; case EPERM: return "EPERM";
    case EISDIR: return "EISDIR"; case EOVERFLOW: return "EOVERFLOW";
    default: return "EIO";
  }
}

static napi_value make_error(napi_env env, int e, const char *what) {
  napi_value code, msg, err;
  char text[256];
  snprintf(text, sizeof text, "%s: %s", what, strerror(e));
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &err);
  return err;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) return -1;
  return 0;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok ? 0 : -1;
}

static napi_value Seek(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  int64_t fd, off;
  bool hole;
  if (get_args(env, info, 3, argv) || get_i64(env, argv[0], &fd) || get_i64(env, argv[1], &off)) { napi_throw_error(env, "EINVAL", "seek(fd, offset, hole)"); return NULL; }
  CHECK(napi_get_value_bool(env, argv[2], &hole));
  off_t r = lseek((int)fd, (off_t)off, hole ? SEEK_HOLE : SEEK_DATA);
  if (r < 0) {
    if (errno == ENXIO) { napi_create_int64(env, -1, &result); return result; }
    napi_throw(env, make_error(env, errno, "lseek"));
    return NULL;
  }
  napi_create_int64(env, (int64_t)r, &result);
  return result;
}

static int ofd_lock(int fd, int cmd, int64_t start, int64_t len, short type, struct flock *fl) {
  memset(fl, 0, sizeof *fl);
  fl->l_whence = SEEK_SET;
  fl->l_start = (off_t)start;
  fl->l_len = (off_t)len;
  fl->l_type = type;
  return fcntl(fd, cmd, fl);
}

static short lock_type(int64_t t) { return t == 0 ? F_UNLCK : t == 1 ? F_RDLCK : F_WRLCK; }

static napi_value SetLock(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  int64_t fd, start, len, type;
  struct flock fl;
  if (get_args(env, info, 4, argv) || get_i64(env, argv[0], &fd) || get_i64(env, argv[1], &start) || get_i64(env, argv[2], &len) || get_i64(env, argv[3], &type)) { napi_throw_error(env, "EINVAL", "setLock(fd, start, len, type)"); return NULL; }
  int r = ofd_lock((int)fd, F_OFD_SETLK, start, len, lock_type(type), &fl);
  napi_create_int32(env, r < 0 ? errno : 0, &result);
  return result;
}

static napi_value GetLock(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  int64_t fd, start, len, type;
  struct flock fl;
  if (get_args(env, info, 4, argv) || get_i64(env, argv[0], &fd) || get_i64(env, argv[1], &start) || get_i64(env, argv[2], &len) || get_i64(env, argv[3], &type)) { napi_throw_error(env, "EINVAL", "getLock(fd, start, len, type)"); return NULL; }
  if (ofd_lock((int)fd, F_OFD_GETLK, start, len, lock_type(type), &fl) < 0) { napi_throw(env, make_error(env, errno, "fcntl(F_OFD_GETLK)")); return NULL; }
  napi_create_int32(env, fl.l_type == F_UNLCK ? 0 : fl.l_type == F_RDLCK ? 1 : 2, &result);
  return result;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int kind; /* 0 fallocate, 1 copy_file_range, 2 sync_file_range */
  int fd_in, fd_out, mode;
  int64_t off_in, off_out, len, done;
  int err;
  const char *what;
} Work;

static void execute(napi_env env, void *data) {
  (void)env;
  Work *w = data;
  if (w->kind == 0) {
    int mode = w->mode == 1 ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) : w->mode == 2 ? FALLOC_FL_ZERO_RANGE : 0;
    if (fallocate(w->fd_in, mode, (off_t)w->off_in, (off_t)w->len) < 0) w->err = errno;
    return;
  }
  if (w->kind == 2) {
    /* Starts writeback of the range's dirty pages without waiting for it (nbytes 0 = to the end). */
    if (sync_file_range(w->fd_in, (off_t)w->off_in, (off_t)w->len, SYNC_FILE_RANGE_WRITE) < 0) w->err = errno;
    return;
  }
  loff_t in = (loff_t)w->off_in, out = (loff_t)w->off_out;
  while (w->done < w->len) {
    ssize_t n = copy_file_range(w->fd_in, &in, w->fd_out, &out, (size_t)(w->len - w->done), 0);
    if (n < 0) { if (errno == EINTR) continue; w->err = errno; return; }
    if (n == 0) break;
    w->done += n;
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  Work *w = data;
  if (status != napi_ok && !w->err) w->err = EIO;
  if (w->err) {
    napi_reject_deferred(env, w->deferred, make_error(env, w->err, w->what));
  } else {
    napi_value v;
    if (w->kind == 1) napi_create_int64(env, w->done, &v); else napi_get_undefined(env, &v);
    napi_resolve_deferred(env, w->deferred, v);
  }
  napi_delete_async_work(env, w->work);
  free(w);
}

static napi_value start(napi_env env, Work *w) {
  napi_value promise, name;
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_string_utf8(env, w->what, NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, w, &w->work);
  napi_queue_async_work(env, w->work);
  return promise;
}

static napi_value Fallocate(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int64_t fd, mode, off, len;
  if (get_args(env, info, 4, argv) || get_i64(env, argv[0], &fd) || get_i64(env, argv[1], &mode) || get_i64(env, argv[2], &off) || get_i64(env, argv[3], &len)) { napi_throw_error(env, "EINVAL", "fallocate(fd, mode, offset, length)"); return NULL; }
  Work *w = calloc(1, sizeof *w);
  if (!w) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  w->kind = 0; w->fd_in = (int)fd; w->mode = (int)mode; w->off_in = off; w->len = len; w->what = "fallocate";
  return start(env, w);
}

static napi_value CopyRange(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int64_t fin, oin, fout, oout, len;
  if (get_args(env, info, 5, argv) || get_i64(env, argv[0], &fin) || get_i64(env, argv[1], &oin) || get_i64(env, argv[2], &fout) || get_i64(env, argv[3], &oout) || get_i64(env, argv[4], &len)) { napi_throw_error(env, "EINVAL", "copyRange(in, inOffset, out, outOffset, length)"); return NULL; }
  Work *w = calloc(1, sizeof *w);
  if (!w) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  w->kind = 1; w->fd_in = (int)fin; w->off_in = oin; w->fd_out = (int)fout; w->off_out = oout; w->len = len; w->what = "copy_file_range";
  return start(env, w);
}

static napi_value StartWriteback(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t fd, off, len;
  if (get_args(env, info, 3, argv) || get_i64(env, argv[0], &fd) || get_i64(env, argv[1], &off) || get_i64(env, argv[2], &len)) { napi_throw_error(env, "EINVAL", "startWriteback(fd, offset, length)"); return NULL; }
  Work *w = calloc(1, sizeof *w);
  if (!w) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  w->kind = 2; w->fd_in = (int)fd; w->off_in = off; w->len = len; w->what = "sync_file_range";
  return start(env, w);
}

#define BUFFER_ALIGN 4096
#define BUFFER_MAX ((int64_t)1 << 30)

static void free_aligned(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  free(data);
}

/* An external ArrayBuffer over posix_memalign'd memory, freed by its finalizer. Runtimes that forbid
 * external buffers (V8 sandbox) get an over-allocated ordinary ArrayBuffer and an aligned view of it
 * (V8 never moves ArrayBuffer backing stores). Either way JS sees a Uint8Array whose data is aligned. */
static napi_value AlignedBuffer(napi_env env, napi_callback_info info) {
  napi_value argv[1], ab, view;
  int64_t size;
  if (get_args(env, info, 1, argv) || get_i64(env, argv[0], &size) || size <= 0 || size > BUFFER_MAX) { napi_throw_error(env, "EINVAL", "alignedBuffer(size): size must be 1 byte to 1 GiB"); return NULL; }
  void *mem = NULL;
  if (posix_memalign(&mem, BUFFER_ALIGN, (size_t)size) != 0) { napi_throw_error(env, "ENOMEM", "alignedBuffer: out of memory"); return NULL; }
  memset(mem, 0, (size_t)size);
  size_t skip = 0;
  if (napi_create_external_arraybuffer(env, mem, (size_t)size, free_aligned, NULL, &ab) != napi_ok) {
    free(mem);
    void *data = NULL;
    CHECK(napi_create_arraybuffer(env, (size_t)size + BUFFER_ALIGN, &data, &ab));
    skip = (BUFFER_ALIGN - ((uintptr_t)data & (BUFFER_ALIGN - 1))) & (BUFFER_ALIGN - 1);
  }
  CHECK(napi_create_typedarray(env, napi_uint8_array, (size_t)size, ab, skip, &view));
  return view;
}

static napi_value DirectAlignment(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int64_t fd, align = 0;
  if (get_args(env, info, 1, argv) || get_i64(env, argv[0], &fd)) { napi_throw_error(env, "EINVAL", "directAlignment(fd)"); return NULL; }
#ifdef STATX_DIOALIGN
  struct statx stx;
  if (statx((int)fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN)) {
    align = stx.stx_dio_offset_align > stx.stx_dio_mem_align ? stx.stx_dio_offset_align : stx.stx_dio_mem_align;
  }
#endif
  struct stat st;
  if (align == 0 && fstat((int)fd, &st) == 0 && S_ISBLK(st.st_mode)) {
    int ssz = 0;
    if (ioctl((int)fd, BLKSSZGET, &ssz) == 0 && ssz > 0) align = ssz;
  }
  napi_create_int64(env, align, &result);
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "seek", NULL, Seek, NULL, NULL, NULL, napi_default, NULL },
    { "fallocate", NULL, Fallocate, NULL, NULL, NULL, napi_default, NULL },
    { "setLock", NULL, SetLock, NULL, NULL, NULL, napi_default, NULL },
    { "getLock", NULL, GetLock, NULL, NULL, NULL, napi_default, NULL },
    { "copyRange", NULL, CopyRange, NULL, NULL, NULL, napi_default, NULL },
    { "startWriteback", NULL, StartWriteback, NULL, NULL, NULL, napi_default, NULL },
    { "alignedBuffer", NULL, AlignedBuffer, NULL, NULL, NULL, napi_default, NULL },
    { "directAlignment", NULL, DirectAlignment, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
