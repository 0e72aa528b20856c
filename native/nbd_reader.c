/*
 * The receiving side of an NBD connection used for reads only, on a thread of its own. In
 * JavaScript the main thread takes each reply off the socket between its other work; a unix
 * socket buffers only ~200 KiB, so the server stalls whenever that work runs long, and the
 * copy went at the speed of the two taking turns. Here a thread does nothing but wait on the
 * socket and receive each reply's data straight into its request's buffer.
 *
 * The connection is negotiated in JavaScript without structured replies, so every reply is
 * the 16-byte simple reply (magic, error, handle) followed, for a successful read, by exactly
 * the bytes asked for: nothing a server sends is trusted beyond those 16 bytes. A reply with
 * another magic, to a handle not in flight or after the server closed fails the connection.
 *   nbdReaderStart(fd, timeoutMs, callback) -> reader: dup()s fd (the caller closes its own);
 *     callback(slot, kind, code, message): kind 0 the read in `slot` finished (code: the
 *     server's NBD error, 0 for success); kind 1 protocol error, 2 closed by the server,
 *     3 timeout (no answer owed for timeoutMs), 4 socket error (code: errno): the connection
 *     is dead, every read in flight failed with it
 *   nbdReaderRead(reader, offset, buffer) -> slot: sends NBD_CMD_READ for buffer.length bytes
 *   nbdReaderStop(reader, disconnect): NBD_CMD_DISC first when `disconnect`; joins the thread,
 *     closes the socket; reads still in flight never complete (the caller fails them)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nbd_reader.h"

#define SLOTS 64
#define MAX_READ (32u * 1024 * 1024)
#define REQUEST_MAGIC 0x25609513u
#define SIMPLE_REPLY_MAGIC 0x67446698u
#define CMD_READ 0
#define CMD_DISC 2
/* The longest a poll sleeps before the timeout is looked at again. */
#define POLL_SLICE_MS 1000

enum { SLOT_FREE = 0, SLOT_SENT, SLOT_DONE };
enum { DONE = 0, PROTOCOL = 1, CLOSED = 2, TIMEOUT = 3, SOCKET = 4 };

typedef struct {
  int state;
  uint64_t handle;
  uint8_t *buf;
  uint32_t len;
  napi_ref ref;
} Slot;

typedef struct {
  int slot, kind, code;
  char message[96];
} Completion;

typedef struct {
  int fd, wake[2];
  int64_t timeout_ms;
  pthread_t thread;
  /* started: the thread runs; halted: it was joined and the descriptors closed; stopped: stop() ran;
   * tsfn_gone: the thread-safe function was finalized (at environment teardown, before a stop). */
  int started, halted, stopped, tsfn_gone;
  pthread_mutex_t lock;
  Slot slots[SLOTS];
  int outstanding;
  uint64_t counter;
  int64_t progress_ms;
  napi_threadsafe_function tsfn;
  int tsfn_refs;
  /* The JavaScript external and the thread-safe function: the last finalized frees the reader. */
  int owners;
} Reader;

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

static void post(Reader *r, int slot, int kind, int code, const char *message) {
  Completion *c = calloc(1, sizeof *c);
  if (!c) return;
  c->slot = slot; c->kind = kind; c->code = code;
  if (message) snprintf(c->message, sizeof c->message, "%s", message);
  napi_call_threadsafe_function(r->tsfn, c, napi_tsfn_blocking);
}

/* Fills p[0, n) from the socket. 0 when done, else the failure's kind (code: errno), or -1 when told to stop. */
static int receive(Reader *r, uint8_t *p, size_t n, int *code) {
  size_t got = 0;
  while (got < n) {
    ssize_t k = recv(r->fd, p + got, n - got, 0);
    if (k > 0) {
      got += (size_t)k;
      pthread_mutex_lock(&r->lock);
      r->progress_ms = now_ms();
      pthread_mutex_unlock(&r->lock);
      continue;
    }
    if (k == 0) return CLOSED;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) { *code = errno; return SOCKET; }
    struct pollfd fds[2] = { { r->fd, POLLIN, 0 }, { r->wake[0], POLLIN, 0 } };
    int ready = poll(fds, 2, r->timeout_ms < POLL_SLICE_MS ? (int)r->timeout_ms : POLL_SLICE_MS);
    if (ready < 0 && errno != EINTR) { *code = errno; return SOCKET; }
    if (fds[1].revents) return -1;
    if (ready == 0) {
      pthread_mutex_lock(&r->lock);
      int late = r->outstanding > 0 && now_ms() - r->progress_ms >= r->timeout_ms;
      pthread_mutex_unlock(&r->lock);
      if (late) return TIMEOUT;
    }
  }
  return 0;
}

static void *run(void *arg) {
  Reader *r = arg;
  uint8_t header[16];
  char message[96];
  for (;;) {
    int code = 0, kind = receive(r, header, sizeof header, &code);
    if (kind < 0) return NULL;
    if (kind) { post(r, -1, kind, code, NULL); return NULL; }
    uint32_t magic = get32(header), error = get32(header + 4);
    uint64_t handle = get64(header + 8);
    if (magic != SIMPLE_REPLY_MAGIC) {
      snprintf(message, sizeof message, "invalid reply magic 0x%x", magic);
      post(r, -1, PROTOCOL, 0, message);
      return NULL;
    }
    int index = (int)(handle & (SLOTS - 1));
    pthread_mutex_lock(&r->lock);
    Slot *s = &r->slots[index];
    int known = s->state == SLOT_SENT && s->handle == handle;
    pthread_mutex_unlock(&r->lock);
    if (!known) {
      snprintf(message, sizeof message, "reply to unknown handle %llu", (unsigned long long)handle);
      post(r, -1, PROTOCOL, 0, message);
      return NULL;
    }
    /* The slot is ours until it is posted: the main thread only frees posted slots. */
    if (error == 0) {
      kind = receive(r, s->buf, s->len, &code);
      if (kind < 0) return NULL;
      if (kind) { post(r, -1, kind, code, NULL); return NULL; }
    }
    pthread_mutex_lock(&r->lock);
    s->state = SLOT_DONE;
    r->outstanding--;
    pthread_mutex_unlock(&r->lock);
    post(r, index, DONE, (int)(error > 0x7fffffff ? 0x7fffffff : error), NULL);
  }
}

static void release_slot(napi_env env, Reader *r, int index) {
  Slot *s = &r->slots[index];
  if (s->ref) napi_delete_reference(env, s->ref);
  s->ref = NULL;
  s->buf = NULL;
  s->state = SLOT_FREE;
}

/* Keeps the process alive while reads are owed (and only then: an idle reader must not hold the loop open). */
static void hold(napi_env env, Reader *r, int on) {
  if (on && r->tsfn_refs++ == 0) napi_ref_threadsafe_function(env, r->tsfn);
  if (!on && r->tsfn_refs > 0 && --r->tsfn_refs == 0) napi_unref_threadsafe_function(env, r->tsfn);
}

static void call_js(napi_env env, napi_value callback, void *context, void *data) {
  Reader *r = context;
  Completion *c = data;
  if (env && !r->stopped) {
    if (c->slot >= 0) {
      release_slot(env, r, c->slot);
      hold(env, r, 0);
    }
    napi_value argv[4], global;
    napi_create_int32(env, c->slot, &argv[0]);
    napi_create_int32(env, c->kind, &argv[1]);
    napi_create_int32(env, c->code, &argv[2]);
    napi_create_string_utf8(env, c->message, NAPI_AUTO_LENGTH, &argv[3]);
    napi_get_global(env, &global);
    napi_call_function(env, global, callback, 4, argv, NULL);
  }
  free(c);
}

/* Joins the thread and closes the descriptors; no N-API call, so that finalizers may use it. */
static void halt(Reader *r) {
  if (r->halted) return;
  r->halted = 1;
  if (r->started) {
    (void)!write(r->wake[1], "x", 1);
    pthread_join(r->thread, NULL);
  }
  close(r->fd);
  close(r->wake[0]);
  close(r->wake[1]);
}

static void stop(napi_env env, Reader *r, int disconnect) {
  if (r->stopped) return;
  r->stopped = 1;
  if (disconnect && !r->halted) {
    uint8_t req[28] = { 0 };
    put32(req, REQUEST_MAGIC);
    req[7] = CMD_DISC;
    (void)!send(r->fd, req, sizeof req, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(r->fd, SHUT_WR);
  }
  halt(r);
  for (int i = 0; i < SLOTS; i++) release_slot(env, r, i);
  if (r->tsfn_gone) return;
  if (r->tsfn_refs > 0) napi_unref_threadsafe_function(env, r->tsfn);
  r->tsfn_refs = 0;
  /* Completions still queued are dropped (call_js sees `stopped`); the last one out frees the reader. */
  napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
}

static void disown(Reader *r) {
  if (--r->owners > 0) return;
  pthread_mutex_destroy(&r->lock);
  free(r);
}

static void finalize_tsfn(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  Reader *r = data;
  /* Finalized without a stop only when the environment goes (a store never closed): no read is
   * owed then (an owed read holds the loop open), so the thread is waiting for a header. */
  r->tsfn_gone = 1;
  halt(r);
  disown(r);
}

static void finalize_external(napi_env env, void *data, void *hint) {
  (void)hint;
  /* Collected without a stop: the thread must not outlive its buffers. */
  stop(env, data, 0);
  disown(data);
}

static Reader *unwrap(napi_env env, napi_value v) {
  void *p = NULL;
  return napi_get_value_external(env, v, &p) == napi_ok ? p : NULL;
}

static napi_value throw_errno(napi_env env, int e, const char *what) {
  napi_throw(env, make_error(env, e, what));
  return NULL;
}

napi_value NbdReaderStart(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], name, out;
  int64_t fd, timeout;
  napi_valuetype t;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || napi_get_value_int64(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], &timeout) != napi_ok || napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function || fd < 0 || timeout < 1) {
    napi_throw_error(env, "EINVAL", "nbdReaderStart(fd, timeoutMs, callback)");
    return NULL;
  }
  Reader *r = calloc(1, sizeof *r);
  if (!r) return throw_errno(env, ENOMEM, "nbdReaderStart");
  r->timeout_ms = timeout;
  r->owners = 2;
  r->fd = fcntl((int)fd, F_DUPFD_CLOEXEC, 0);
  if (r->fd < 0) { int e = errno; free(r); return throw_errno(env, e, "dup"); }
  if (pipe2(r->wake, O_CLOEXEC | O_NONBLOCK) < 0) { int e = errno; close(r->fd); free(r); return throw_errno(env, e, "pipe"); }
  /* Non-blocking (it is already, as libuv opened it): the thread waits in poll, where a stop can wake it. */
  fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK);
  pthread_mutex_init(&r->lock, NULL);
  napi_create_string_utf8(env, "nbdReader", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, r, finalize_tsfn, r, call_js, &r->tsfn) != napi_ok) {
    close(r->fd); close(r->wake[0]); close(r->wake[1]); pthread_mutex_destroy(&r->lock); free(r);
    return throw_errno(env, EIO, "napi_create_threadsafe_function");
  }
  napi_unref_threadsafe_function(env, r->tsfn);
  if (pthread_create(&r->thread, NULL, run, r) != 0) {
    stop(env, r, 0);
    disown(r);
    return throw_errno(env, EAGAIN, "pthread_create");
  }
  r->started = 1;
  if (napi_create_external(env, r, finalize_external, NULL, &out) != napi_ok) { stop(env, r, 0); disown(r); return throw_errno(env, EIO, "napi_create_external"); }
  return out;
}

/* Sends all of p from the main thread; the socket has room for many requests, so waiting is rare and bounded. */
static int send_all(Reader *r, const uint8_t *p, size_t n) {
  size_t sent = 0;
  while (sent < n) {
    ssize_t k = send(r->fd, p + sent, n - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k >= 0) { sent += (size_t)k; continue; }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return errno;
    struct pollfd fd = { r->fd, POLLOUT, 0 };
    int ready = poll(&fd, 1, (int)(r->timeout_ms > 0x7fffffff ? 0x7fffffff : r->timeout_ms));
    if (ready == 0) return ETIMEDOUT;
    if (ready < 0 && errno != EINTR) return errno;
  }
  return 0;
}

napi_value NbdReaderRead(napi_env env, napi_callback_info info) {
  size_t argc = 3, length, byte_offset;
  napi_value argv[3], ab, out;
  int64_t offset;
  napi_typedarray_type type;
  void *data = NULL;
  Reader *r;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || !(r = unwrap(env, argv[0])) || napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &type, &length, &data, &ab, &byte_offset) != napi_ok || type != napi_uint8_array || offset < 0 || length == 0 || length > MAX_READ) {
    napi_throw_error(env, "EINVAL", "nbdReaderRead(reader, offset, buffer of 1 B to 32 MiB)");
    return NULL;
  }
  if (r->stopped) return throw_errno(env, EINVAL, "nbdReaderRead: the reader is stopped");
  int index = -1;
  pthread_mutex_lock(&r->lock);
  for (int i = 0; i < SLOTS && index < 0; i++)
    if (r->slots[i].state == SLOT_FREE) index = i;
  pthread_mutex_unlock(&r->lock);
  if (index < 0) return throw_errno(env, EAGAIN, "nbdReaderRead: too many reads in flight");
  Slot *s = &r->slots[index];
  if (napi_create_reference(env, argv[2], 1, &s->ref) != napi_ok) return throw_errno(env, EINVAL, "nbdReaderRead: buffer");
  uint8_t req[28] = { 0 };
  uint64_t handle = ++r->counter << 6 | (uint64_t)index;
  put32(req, REQUEST_MAGIC);
  req[7] = CMD_READ;
  put64(req + 8, handle);
  put64(req + 16, (uint64_t)offset);
  put32(req + 24, (uint32_t)length);
  pthread_mutex_lock(&r->lock);
  s->buf = data;
  s->len = (uint32_t)length;
  s->handle = handle;
  s->state = SLOT_SENT;
  if (r->outstanding++ == 0) r->progress_ms = now_ms();
  pthread_mutex_unlock(&r->lock);
  hold(env, r, 1);
  int e = send_all(r, req, sizeof req);
  if (e) {
    /* Possibly half sent: the stream is lost, and the caller must stop the reader. */
    pthread_mutex_lock(&r->lock);
    r->outstanding--;
    pthread_mutex_unlock(&r->lock);
    release_slot(env, r, index);
    hold(env, r, 0);
    return throw_errno(env, e, "send");
  }
  napi_create_int32(env, index, &out);
  return out;
}

napi_value NbdReaderStop(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool disconnect = false;
  Reader *r;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !(r = unwrap(env, argv[0]))) {
    napi_throw_error(env, "EINVAL", "nbdReaderStop(reader, disconnect)");
    return NULL;
  }
  if (argc > 1) napi_get_value_bool(env, argv[1], &disconnect);
  stop(env, r, disconnect);
  return NULL;
}
