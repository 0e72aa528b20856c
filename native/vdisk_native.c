/*
 * vdisk's small native module: the Linux file operations Node does not
 * expose. Every function takes a file descriptor from a Node FileHandle.
 *   seek(fd, offset, hole)            SEEK_DATA / SEEK_HOLE; -1 when past the last data (ENXIO)
 *   fallocate(fd, mode, off, len)     -> Promise<void>; mode 0 allocate, 1 punch hole, 2 zero range
 *   setLock(fd, start, len, type)     OFD byte-range lock: type 0 unlock, 1 shared, 2 exclusive; returns 0 or errno
 *   getLock(fd, start, len, type)     the conflicting lock's type (1 shared, 2 exclusive) or 0
 *   copyRange(in, inOff, out, outOff, len) -> Promise<number> bytes copied (copy_file_range)
 *   writeAt(fd, buf, offset)          -> Promise<void>: pwrite of all of buf (see WriteAt)
 *   copyScan(in, inOff, out, outOff, buf, len, guest, minBytes, alignment, unit, unitBase)
 *                                     -> Promise<number[]>: reads len bytes into buf (in < 0: buf holds
 *                                     them), splits them into convert's sparse runs (see scan_run)
 *                                     and, when out >= 0, writes the data runs; one thread-pool hop
 *                                     per request (see CopyScan)
 *   compareAt(fdA, offA, fdB, offB, len, scratchA, scratchB)
 *                                     whether two files' ranges hold the same bytes: the first
 *                                     differing 512-byte block's offset or -1, one request
 *   pageOffset(view)                  where a Uint8Array's first byte sits within its page
 *   alignedBuffer(size)               Uint8Array over page-aligned (4096) zeroed memory, for O_DIRECT
 *   deviceSize(fd)                    a device's size (lseek to its end); -1 when it cannot seek
 *   directAlignment(fd)               the file's O_DIRECT offset/memory alignment (statx DIOALIGN,
 *                                     else BLKSSZGET for block devices); 0 when unknown
 *   decodeBatch, encodeUnit, zstdAvailable: compressed units on the thread pool (see codec.c)
 *   nbdReaderStart, nbdReaderRead, nbdReaderStop: an NBD connection's reads received on a
 *                                     thread of their own (see nbd_reader.c)
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
#include <pthread.h>

#include "codec.h"
#include "nbd_reader.h"

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, "EINVAL", "vdisk_native: bad arguments"); return NULL; } } while (0)

static const char *errno_name(int e) {
  switch (e) {
    case ENXIO: return "ENXIO"; case EBADF: return "EBADF"; case EINVAL: return "EINVAL";
    case EOPNOTSUPP: return "EOPNOTSUPP"; case ENOSPC: return "ENOSPC"; case EIO: return "EIO";
    case EAGAIN: return "EAGAIN"; case EACCES: return "EACCES"; case EXDEV: return "EXDEV";
    case ENOSYS: return "ENOSYS"; case EFBIG: return "EFBIG"; case EPERM: return "EPERM";
    case EISDIR: return "EISDIR"; case EOVERFLOW: return "EOVERFLOW";
    case EDQUOT: return "EDQUOT"; case EROFS: return "EROFS"; case ENOMEM: return "ENOMEM";
    case ESPIPE: return "ESPIPE"; case ENODEV: return "ENODEV";
    case EPIPE: return "EPIPE"; case ECONNRESET: return "ECONNRESET"; case ETIMEDOUT: return "ETIMEDOUT";
    default: return "EIO";
  }
}

napi_value make_error(napi_env env, int e, const char *what) {
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
  int kind; /* 0 fallocate, 1 copy_file_range, 2 sync_file_range, 3 copy-scan, 4 write, 5 compare */
  int fd_in, fd_out, mode;
  int64_t off_in, off_out, len, done;
  int err;
  const char *what;
  /* copy-scan: the caller's buffer (held by buf_ref), the scan parameters, the runs found
   * (> 0 data, < 0 zeros), and which side failed at which offset */
  uint8_t *buf;
  napi_ref buf_ref;
  int64_t guest, min_bytes, alignment, unit, unit_base, nruns, err_off;
  int64_t *runs;
  int err_write;
  /* writeAt: its place in the order the writes were made in (see take_turn) */
  uint64_t ticket;
  /* compareAt: the second file's scratch buffer (buf is the first's) and the piece both take */
  uint8_t *buf2;
  napi_ref buf2_ref;
  int64_t piece;
} Work;

#define SECTOR 512
static const uint8_t zero_sector[SECTOR];

static int is_zero(const uint8_t *p, int64_t n) {
  /* Cheap early exits first, as qemu's buffer_is_zero does. */
  if (p[0] | p[n - 1] | p[n / 2]) return 0;
  return memcmp(p, zero_sector, (size_t)n) == 0;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* The sectors at the start of buf with the same zero-ness, ends moved to `alignment` sectors
 * (qemu's is_allocated_sectors); the mirror of sameRun in src/jobs/sparse-scan.ts. */
static int64_t same_run(const uint8_t *buf, int64_t len, int64_t sector, int64_t alignment, int *data) {
  int64_t off = min64(SECTOR, len);
  int zero = is_zero(buf, off);
  while (off < len) {
    int64_t end = min64(off + SECTOR, len);
    if (is_zero(buf + off, end - off) != zero) break;
    off = end;
  }
  if (off >= len) { *data = !zero; return len; }
  int64_t sectors = (len + SECTOR - 1) / SECTOR, i = off / SECTOR, tail = (sector + i) % alignment;
  if (tail) {
    /* A short zero run before data is rewritten by the data's read-modify-write anyway. */
    if (zero && i <= tail) zero = 0;
    i = zero ? i - tail : min64(i + alignment - tail, sectors);
  }
  *data = !zero;
  return min64(i * SECTOR, len);
}

/* The next run of buf: zeros to leave sparse, or data that swallows zero runs shorter than
 * min_bytes (qemu's is_allocated_sectors_min); the mirror of nextSparseRun in sparse-scan.ts. */
static int64_t sparse_run(const uint8_t *buf, int64_t len, int64_t sector, int64_t min_bytes, int64_t alignment, int *data) {
  int64_t min = min64(min_bytes / SECTOR > 1 ? min_bytes / SECTOR : 1, (len + SECTOR - 1) / SECTOR);
  int64_t first = same_run(buf, len, sector, alignment, data);
  if (!*data) return first;
  int64_t used = first, checked = first;
  while (checked < len) {
    int d;
    int64_t r = same_run(buf + checked, len - checked, sector + checked / SECTOR, alignment, &d);
    checked += r;
    if (d) used = checked;
    else if ((r + SECTOR - 1) / SECTOR >= min) break;
  }
  *data = 1;
  return used;
}

/* Buffered writes into one file serialize on its inode lock, where waiting threads spin and burn
 * the cores the copy needs: the copy's writes take turns here instead, sleeping while they wait. */
static pthread_mutex_t write_turn = PTHREAD_MUTEX_INITIALIZER;

/* writeAt's writes land in the order JavaScript made them (a later write to the same bytes wins)
 * without JavaScript waiting for each before making the next: each takes a ticket when made (on
 * the main thread) and its thread-pool turn waits for the tickets before it. The pool takes work
 * first in, first out, so the oldest waiting ticket's write is always running: no turn waits on a
 * write still queued behind it. A turn that ends wakes only the waiters on the next ticket's
 * condition (one of TURN_SLOTS, by ticket): waking every waiting pool thread to find the one whose
 * turn it is cost a futex round trip per waiter per write. */
#define TURN_SLOTS 64
static pthread_mutex_t ticket_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ticket_done[TURN_SLOTS];
static pthread_once_t ticket_once = PTHREAD_ONCE_INIT;
static uint64_t next_ticket, serving;

static void init_turns(void) {
  for (int i = 0; i < TURN_SLOTS; i++) pthread_cond_init(&ticket_done[i], NULL);
}

static void take_turn(uint64_t ticket) {
  pthread_mutex_lock(&ticket_lock);
  /* Tickets TURN_SLOTS apart share a condition: a waiter woken for another's turn sleeps again. */
  while (serving != ticket) pthread_cond_wait(&ticket_done[ticket % TURN_SLOTS], &ticket_lock);
  pthread_mutex_unlock(&ticket_lock);
}

static void end_turn(void) {
  pthread_mutex_lock(&ticket_lock);
  serving++;
  pthread_cond_broadcast(&ticket_done[serving % TURN_SLOTS]);
  pthread_mutex_unlock(&ticket_lock);
}

static int write_all(int fd, const uint8_t *p, int64_t len, int64_t off, int64_t *failed_at) {
  int64_t done = 0;
  while (done < len) {
    ssize_t n = pwrite(fd, p + done, (size_t)(len - done), (off_t)(off + done));
    if (n < 0) { if (errno == EINTR) continue; *failed_at = off + done; return errno; }
    done += n;
  }
  return 0;
}

/* With nothing to scan (-S 0) the whole request is one data run: the kernel copies it between the
 * files (copy_file_range: one page copy instead of a read and a write), and what lies past the
 * source's end is written as zeros. Returns 0 when the files do not allow it and nothing was done. */
static int copy_kernel(Work *w) {
  loff_t in = (loff_t)w->off_in, out = (loff_t)w->off_out;
  int64_t done = 0;
  while (done < w->len) {
    ssize_t n = copy_file_range(w->fd_in, &in, w->fd_out, &out, (size_t)(w->len - done), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (done == 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EBADF)) return 0;
      /* Which file failed is not told: the target is the likely one (space, quota). */
      w->err = errno; w->err_write = 1; w->err_off = w->off_out + done;
      return 1;
    }
    if (n == 0) break;
    done += n;
  }
  if (done < w->len) {
    memset(w->buf, 0, (size_t)(w->len - done));
    w->err = write_all(w->fd_out, w->buf, w->len - done, w->off_out + done, &w->err_off);
    if (w->err) w->err_write = 1;
  }
  w->runs[w->nruns++] = w->len;
  return 1;
}

/* Reads `len` bytes at off into buf (zeros past the end of the file); returns 0 or the errno, with
 * where it failed in *failed_at. */
static int read_full(int fd, uint8_t *buf, int64_t len, int64_t off, int64_t *failed_at) {
  int64_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, buf + got, (size_t)(len - got), (off_t)(off + got));
    if (n < 0) { if (errno == EINTR) continue; *failed_at = off + got; return errno; }
    if (n == 0) break;
    got += n;
  }
  if (got < len) memset(buf + got, 0, (size_t)(len - got));
  return 0;
}

/* Reads the request (zeros past the end of the file, as a read past EOF gives), finds its runs
 * and writes its data runs; a failure records its errno, side and offset. */
static void copy_scan(Work *w) {
  w->runs = malloc(sizeof(int64_t) * (size_t)((w->len + SECTOR - 1) / SECTOR + 1));
  if (!w->runs) { w->err = ENOMEM; return; }
  /* No input file (in < 0): the buffer holds the bytes already (a network source's) and is only scanned and written. */
  if (w->fd_in >= 0 && w->min_bytes == 0 && w->fd_out >= 0 && w->len > 0 && copy_kernel(w)) return;
  if (w->fd_in >= 0 && (w->err = read_full(w->fd_in, w->buf, w->len, w->off_in, &w->err_off))) return;
  for (int64_t pos = 0; pos < w->len;) {
    int data = 1;
    /* A source whose block status answers one unit at a time is scanned a unit at a time, as qemu
     * scans each status run; neighbouring runs of one kind merge again. */
    int64_t seg = w->len - pos;
    if (w->unit > 0 && w->min_bytes > 0) {
      int64_t into = (w->guest + pos - w->unit_base) % w->unit;
      if (into < 0) into += w->unit;
      seg = min64(seg, w->unit - into);
    }
    int64_t n = w->min_bytes > 0 ? sparse_run(w->buf + pos, seg, (w->guest + pos) / SECTOR, w->min_bytes, w->alignment, &data) : seg;
    if (w->nruns > 0 && (w->runs[w->nruns - 1] > 0) == (data != 0)) w->runs[w->nruns - 1] += data ? n : -n;
    else w->runs[w->nruns++] = data ? n : -n;
    pos += n;
  }
  if (w->fd_out < 0) return;
  pthread_mutex_lock(&write_turn);
  int64_t pos = 0;
  for (int64_t i = 0; i < w->nruns && !w->err; i++) {
    int64_t n = w->runs[i] < 0 ? -w->runs[i] : w->runs[i];
    if (w->runs[i] > 0) {
      w->err = write_all(w->fd_out, w->buf + pos, n, w->off_out + pos, &w->err_off);
      if (w->err) w->err_write = 1;
    }
    pos += n;
  }
  pthread_mutex_unlock(&write_turn);
}

/* Compares the two files' ranges piece by piece, each piece read into the same scratch memory (so
 * both stay in this core's cache for the comparison) and stops at the first difference: `done` is
 * the offset of the first 512-byte block that differs (qemu's compare_buffers), or -1. */
static void compare_ranges(Work *w) {
  w->done = -1;
  for (int64_t pos = 0; pos < w->len; pos += w->piece) {
    int64_t n = min64(w->piece, w->len - pos);
    if ((w->err = read_full(w->fd_in, w->buf, n, w->off_in + pos, &w->err_off))) return;
    if ((w->err = read_full(w->fd_out, w->buf2, n, w->off_out + pos, &w->err_off))) { w->err_write = 1; return; }
    if (memcmp(w->buf, w->buf2, (size_t)n) == 0) continue;
    for (int64_t at = 0; at < n; at += SECTOR) {
      if (memcmp(w->buf + at, w->buf2 + at, (size_t)min64(SECTOR, n - at)) != 0) { w->done = pos + at; return; }
    }
  }
}

static void execute(napi_env env, void *data) {
  (void)env;
  Work *w = data;
  if (w->kind == 0) {
    int mode = w->mode == 1 ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) : w->mode == 2 ? FALLOC_FL_ZERO_RANGE : 0;
    if (fallocate(w->fd_in, mode, (off_t)w->off_in, (off_t)w->len) < 0) w->err = errno;
    return;
  }
  if (w->kind == 3) {
    copy_scan(w);
    return;
  }
  if (w->kind == 5) {
    compare_ranges(w);
    return;
  }
  if (w->kind == 4) {
    take_turn(w->ticket);
    pthread_mutex_lock(&write_turn);
    w->err = write_all(w->fd_out, w->buf, w->len, w->off_out, &w->err_off);
    pthread_mutex_unlock(&write_turn);
    end_turn();
    w->err_write = 1;
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
    napi_value err = make_error(env, w->err, w->kind >= 3 ? (w->err_write && w->kind != 5 ? "pwrite" : "pread") : w->what);
    if (w->kind >= 3) {
      /* Which side failed, and where: the caller words the error as its store's read or write
       * (compareAt: `second` when the second file's read failed). */
      napi_value side, at;
      napi_get_boolean(env, w->err_write, &side);
      napi_create_int64(env, w->err_off, &at);
      napi_set_named_property(env, err, w->kind == 5 ? "second" : "write", side);
      napi_set_named_property(env, err, "offset", at);
    }
    napi_reject_deferred(env, w->deferred, err);
  } else {
    napi_value v;
    if (w->kind == 1 || w->kind == 5) napi_create_int64(env, w->done, &v);
    else if (w->kind == 3) {
      napi_create_array_with_length(env, (size_t)w->nruns, &v);
      for (int64_t i = 0; i < w->nruns; i++) {
        napi_value n;
        napi_create_int64(env, w->runs[i], &n);
        napi_set_element(env, v, (uint32_t)i, n);
      }
    } else napi_get_undefined(env, &v);
    napi_resolve_deferred(env, w->deferred, v);
  }
  if (w->buf_ref) napi_delete_reference(env, w->buf_ref);
  if (w->buf2_ref) napi_delete_reference(env, w->buf2_ref);
  free(w->runs);
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

/* writeAt(fd, buf, offset): one pwrite request for all of buf (looping over short writes). A file
 * store's writes take one thread-pool request each without the FileHandle machinery around them,
 * which costs more main-thread time than the request itself. Writes land one at a time, in the
 * order they were made (see take_turn). */
static napi_value WriteAt(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t fd, off;
  napi_typedarray_type type;
  size_t length, byte_offset;
  void *data = NULL;
  napi_value ab;
  if (get_args(env, info, 3, argv) || get_i64(env, argv[0], &fd) || napi_get_typedarray_info(env, argv[1], &type, &length, &data, &ab, &byte_offset) != napi_ok ||
      type != napi_uint8_array || get_i64(env, argv[2], &off) || off < 0) {
    napi_throw_error(env, "EINVAL", "writeAt(fd, buffer, offset)");
    return NULL;
  }
  Work *w = calloc(1, sizeof *w);
  if (!w) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  w->kind = 4; w->fd_out = (int)fd; w->off_out = off; w->len = (int64_t)length; w->buf = data; w->what = "pwrite";
  if (napi_create_reference(env, argv[1], 1, &w->buf_ref) != napi_ok) { free(w); napi_throw_error(env, "EINVAL", "writeAt: buffer"); return NULL; }
  /* Last, after every way to fail: a ticket never queued would stall every later write. */
  w->ticket = next_ticket++;
  return start(env, w);
}

/* copyScan(in, inOff, out, outOff, buf, len, guest, minBytes, alignment, unit, unitBase): out < 0
 * only reads and scans; in < 0 only scans and writes what buf holds; minBytes 0 makes the whole
 * request one data run (-S 0); guest is the request's offset in the target image, which decides
 * where sector alignment falls; unit > 0 scans each unit (boundaries at unitBase + k * unit) on its
 * own. */
static napi_value CopyScan(napi_env env, napi_callback_info info) {
  napi_value argv[11];
  int64_t fin, oin, fout, oout, len, guest, min_bytes, alignment, unit, unit_base;
  napi_typedarray_type type;
  size_t length, byte_offset;
  void *data = NULL;
  napi_value ab;
  if (get_args(env, info, 11, argv) || get_i64(env, argv[0], &fin) || get_i64(env, argv[1], &oin) || get_i64(env, argv[2], &fout) || get_i64(env, argv[3], &oout) ||
      napi_get_typedarray_info(env, argv[4], &type, &length, &data, &ab, &byte_offset) != napi_ok || type != napi_uint8_array ||
      get_i64(env, argv[5], &len) || get_i64(env, argv[6], &guest) || get_i64(env, argv[7], &min_bytes) || get_i64(env, argv[8], &alignment) ||
      get_i64(env, argv[9], &unit) || get_i64(env, argv[10], &unit_base) || unit < 0 ||
      len < 0 || (size_t)len > length || oin < 0 || (fin < 0 && fout < 0) || oout < 0 || guest < 0 || min_bytes < 0 || alignment < 1) {
    napi_throw_error(env, "EINVAL", "copyScan(in, inOffset, out, outOffset, buffer, length, guestOffset, minBytes, alignment, unit, unitBase)");
    return NULL;
  }
  Work *w = calloc(1, sizeof *w);
  if (!w) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  w->kind = 3; w->fd_in = (int)fin; w->off_in = oin; w->fd_out = (int)fout; w->off_out = oout; w->len = len;
  w->buf = data; w->guest = guest; w->min_bytes = min_bytes; w->alignment = alignment; w->unit = unit; w->unit_base = unit_base; w->what = "copyScan";
  if (napi_create_reference(env, argv[4], 1, &w->buf_ref) != napi_ok) { free(w); napi_throw_error(env, "EINVAL", "copyScan: buffer"); return NULL; }
  return start(env, w);
}

/* compareAt(fdA, offA, fdB, offB, length, scratchA, scratchB): whether two files' ranges hold the
 * same bytes, read and compared off the main thread in pieces the size of the smaller scratch
 * buffer (a multiple of 512, at least 512); resolves to the offset of the first 512-byte block
 * that differs, or -1. */
static napi_value CompareAt(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  int64_t fa, oa, fb, ob, len;
  napi_typedarray_type ta, tb;
  size_t la, lb, byte_offset;
  void *da = NULL, *db = NULL;
  napi_value ab;
  if (get_args(env, info, 7, argv) || get_i64(env, argv[0], &fa) || get_i64(env, argv[1], &oa) || get_i64(env, argv[2], &fb) || get_i64(env, argv[3], &ob) ||
      get_i64(env, argv[4], &len) || napi_get_typedarray_info(env, argv[5], &ta, &la, &da, &ab, &byte_offset) != napi_ok ||
      napi_get_typedarray_info(env, argv[6], &tb, &lb, &db, &ab, &byte_offset) != napi_ok || ta != napi_uint8_array || tb != napi_uint8_array ||
      fa < 0 || fb < 0 || oa < 0 || ob < 0 || len < 0 || la < SECTOR || lb < SECTOR) {
    napi_throw_error(env, "EINVAL", "compareAt(fdA, offsetA, fdB, offsetB, length, scratchA, scratchB)");
    return NULL;
  }
  Work *w = calloc(1, sizeof *w);
  if (!w) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  w->kind = 5; w->fd_in = (int)fa; w->off_in = oa; w->fd_out = (int)fb; w->off_out = ob; w->len = len;
  w->buf = da; w->buf2 = db; w->piece = (int64_t)((la < lb ? la : lb) / SECTOR * SECTOR); w->what = "compareAt";
  if (napi_create_reference(env, argv[5], 1, &w->buf_ref) != napi_ok || napi_create_reference(env, argv[6], 1, &w->buf2_ref) != napi_ok) {
    if (w->buf_ref) napi_delete_reference(env, w->buf_ref);
    free(w);
    napi_throw_error(env, "EINVAL", "compareAt: buffers");
    return NULL;
  }
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

/* deviceSize(fd): the size of a block or character device (fstat says 0), by seeking to its end
 * as qemu's host_device driver does; -1 when it cannot seek. */
static napi_value DeviceSize(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int64_t fd;
  if (get_args(env, info, 1, argv) || get_i64(env, argv[0], &fd)) { napi_throw_error(env, "EINVAL", "deviceSize(fd)"); return NULL; }
  off_t end = lseek((int)fd, 0, SEEK_END);
  napi_create_int64(env, end < 0 ? -1 : (int64_t)end, &result);
  return result;
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

/* Where a typed array's first byte sits within its page: convert's buffers are placed on page boundaries,
 * where the kernel's copies to and from the page cache run fastest (malloc puts large blocks 16 bytes in). */
static napi_value PageOffset(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  napi_typedarray_type type;
  size_t length, byte_offset;
  void *data;
  napi_value ab;
  if (get_args(env, info, 1, argv) || napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &byte_offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_error(env, "EINVAL", "pageOffset(uint8array)");
    return NULL;
  }
  napi_create_int64(env, (int64_t)((uintptr_t)data & 4095), &result);
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  pthread_once(&ticket_once, init_turns);
  napi_property_descriptor props[] = {
    { "seek", NULL, Seek, NULL, NULL, NULL, napi_default, NULL },
    { "fallocate", NULL, Fallocate, NULL, NULL, NULL, napi_default, NULL },
    { "setLock", NULL, SetLock, NULL, NULL, NULL, napi_default, NULL },
    { "getLock", NULL, GetLock, NULL, NULL, NULL, napi_default, NULL },
    { "copyRange", NULL, CopyRange, NULL, NULL, NULL, napi_default, NULL },
    { "copyScan", NULL, CopyScan, NULL, NULL, NULL, napi_default, NULL },
    { "writeAt", NULL, WriteAt, NULL, NULL, NULL, napi_default, NULL },
    { "startWriteback", NULL, StartWriteback, NULL, NULL, NULL, napi_default, NULL },
    { "alignedBuffer", NULL, AlignedBuffer, NULL, NULL, NULL, napi_default, NULL },
    { "directAlignment", NULL, DirectAlignment, NULL, NULL, NULL, napi_default, NULL },
    { "deviceSize", NULL, DeviceSize, NULL, NULL, NULL, napi_default, NULL },
    { "pageOffset", NULL, PageOffset, NULL, NULL, NULL, napi_default, NULL },
    { "compareAt", NULL, CompareAt, NULL, NULL, NULL, napi_default, NULL },
    { "decodeBatch", NULL, DecodeBatch, NULL, NULL, NULL, napi_default, NULL },
    { "encodeUnit", NULL, EncodeUnit, NULL, NULL, NULL, napi_default, NULL },
    { "encodeUnits", NULL, EncodeUnits, NULL, NULL, NULL, napi_default, NULL },
    { "zstdAvailable", NULL, ZstdAvailable, NULL, NULL, NULL, napi_default, NULL },
    { "nbdReaderStart", NULL, NbdReaderStart, NULL, NULL, NULL, napi_default, NULL },
    { "nbdReaderRead", NULL, NbdReaderRead, NULL, NULL, NULL, napi_default, NULL },
    { "nbdReaderStop", NULL, NbdReaderStop, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
