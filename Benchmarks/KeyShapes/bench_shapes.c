// bench_shapes.c - LMDB and a private hash table on the key shapes of
// `whycache-tool bench state --key-shape` (Sources/whycache-tool/Bench/KeyShape.swift),
// measured the way the anchor benchmarks measure workload W (../shared/anchors:
// bench_lmdb, bench_phys), so that Benchmarks/state-vs-lmdb.sh can put all three
// side by side for a shape other than W. Values are W's: 100 bytes from (i, version).
//
//   bench_shapes SHAPE load DIR N BATCH        LMDB, MDB_NOSYNC; BATCH=0: one transaction
//   bench_shapes SHAPE scan DIR                LMDB cursor over everything, values copied out
//   bench_shapes SHAPE run DIR N R W SECS      R reader processes (one read transaction, reset
//                                              and renewed every 10000 gets) + W (0/1) writer
//                                              (transactions of 1000 random overwrites)
//   bench_shapes SHAPE lookup N OPS            private open-addressing hash table, value copied out
//   bench_shapes SHAPE keys N                  keys 0..<N in hex, one per line (to compare with
//                                              `whycache-tool keys --hex` on a file of the same keys)
//
// SHAPE: user (user:%08d), random16 (two SplitMix64 words from i), url
// (/api/v1/users/<i>/settings). Output lines match the anchors', which the
// script parses.
// Build: gcc -O2 -Wall -o bench_shapes bench_shapes.c -llmdb
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_KEY 33
#define VALUE_LENGTH 100

// ---- workload ----------------------------------------------------------------

static inline uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static inline uint32_t random_below(uint64_t* state, uint32_t n) {
  return (uint32_t)(((splitmix64(state) >> 32) * (uint64_t)n) >> 32);
}

enum Shape { SHAPE_USER, SHAPE_RANDOM16, SHAPE_URL };
static enum Shape g_shape;

// Key i of the current shape into k (MAX_KEY bytes); returns its length.
static inline int make_key(char* k, uint32_t i) {
  switch (g_shape) {
  case SHAPE_USER:
    memcpy(k, "user:", 5);
    for (int d = 12; d >= 5; d--, i /= 10) k[d] = (char)('0' + i % 10);
    return 13;
  case SHAPE_RANDOM16: {
    uint64_t state = (uint64_t)i * 0x9E3779B97F4A7C15ULL ^ 0xD1B54A32D192ED03ULL;
    uint64_t a = splitmix64(&state), b = splitmix64(&state);
    memcpy(k, &a, 8);  // little-endian, as the Swift side writes it
    memcpy(k + 8, &b, 8);
    return 16;
  }
  case SHAPE_URL: {
    memcpy(k, "/api/v1/users/", 14);
    int digits = 1;
    for (uint32_t rest = i / 10; rest; rest /= 10) digits++;
    for (int d = 14 + digits - 1; d >= 14; d--, i /= 10) k[d] = (char)('0' + i % 10);
    memcpy(k + 14 + digits, "/settings", 9);
    return 14 + digits + 9;
  }
  }
  return 0;
}

static inline void make_value(uint8_t* v, uint32_t i, uint32_t version) {
  uint64_t state = (((uint64_t)version << 32) | i) ^ 0x5DEECE66DULL, word;
  for (int j = 0; j < 12; j++) {
    word = splitmix64(&state);
    memcpy(v + 8 * j, &word, 8);
  }
  word = splitmix64(&state);
  memcpy(v + 96, &word, 4);
}

static uint32_t* make_permutation(uint32_t n, uint64_t seed) {
  uint32_t* order = malloc(sizeof(uint32_t) * n);
  for (uint32_t i = 0; i < n; i++) order[i] = i;
  for (uint32_t i = n - 1; i > 0; i--) {
    uint32_t j = random_below(&seed, i + 1), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

static long file_size(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

// ---- processes released at one moment ---------------------------------------

static int g_ready = -1, g_start = -1;

// Called by a child when its setup is done: blocks until every child is ready.
static void wait_for_start(void) {
  char c = 'r';
  if (write(g_ready, &c, 1) != 1) _exit(1);
  close(g_ready);
  while (read(g_start, &c, 1) > 0) {}
  close(g_start);
}

static void run_children(int count, void (*body)(int index, void* argument), void* argument) {
  int ready[2], start[2];
  if (pipe(ready) || pipe(start)) { perror("pipe"); exit(1); }
  fflush(stdout);
  pid_t pids[64];
  for (int i = 0; i < count; i++) {
    if ((pids[i] = fork()) == 0) {
      close(ready[0]);
      close(start[1]);
      g_ready = ready[1];
      g_start = start[0];
      body(i, argument);
      fflush(stdout);
      _exit(0);
    }
  }
  close(ready[1]);
  close(start[0]);
  for (int i = 0; i < count; i++) {
    char c;
    if (read(ready[0], &c, 1) != 1) { fprintf(stderr, "a child died before it was ready\n"); exit(1); }
  }
  close(start[1]);  // end of file releases every child at once
  for (int i = 0; i < count; i++) {
    int status;
    waitpid(pids[i], &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status)) { fprintf(stderr, "child %d failed\n", i); exit(1); }
  }
}

// ---- LMDB ---------------------------------------------------------------------

#define CHECK(x)                                                                     \
  do {                                                                               \
    int rc_ = (x);                                                                   \
    if (rc_) {                                                                       \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, mdb_strerror(rc_)); \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

static MDB_env* open_env(const char* dir, unsigned flags) {
  MDB_env* env;
  CHECK(mdb_env_create(&env));
  CHECK(mdb_env_set_mapsize(env, 8ULL << 30));
  CHECK(mdb_env_set_maxreaders(env, 126));
  CHECK(mdb_env_open(env, dir, flags, 0644));
  return env;
}

static void lmdb_load(const char* dir, uint32_t n, uint32_t batch) {
  char command[4200], path[4200];
  snprintf(command, sizeof command, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
  if (system(command)) exit(1);
  uint32_t* order = make_permutation(n, 42);
  MDB_env* env = open_env(dir, MDB_NOSYNC);
  MDB_txn* txn;
  MDB_dbi dbi;
  char k[MAX_KEY];
  uint8_t v[VALUE_LENGTH];
  double t0 = now_s();
  CHECK(mdb_txn_begin(env, NULL, 0, &txn));
  CHECK(mdb_dbi_open(txn, NULL, 0, &dbi));
  for (uint32_t j = 0; j < n; j++) {
    MDB_val key = {make_key(k, order[j]), k}, value = {VALUE_LENGTH, v};
    make_value(v, order[j], 0);
    CHECK(mdb_put(txn, dbi, &key, &value, 0));
    if (batch && (j + 1) % batch == 0) {
      CHECK(mdb_txn_commit(txn));
      CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    }
  }
  CHECK(mdb_txn_commit(txn));
  double seconds = now_s() - t0;
  mdb_env_sync(env, 1);
  snprintf(path, sizeof path, "%s/data.mdb", dir);
  printf("load N=%u batch=%u NOSYNC: %.3f s  %.0f inserts/s\n", n, batch, seconds, n / seconds);
  printf("  file %ld bytes (%.1f B/key)\n", file_size(path), (double)file_size(path) / n);
  mdb_env_close(env);
  free(order);
}

static void lmdb_scan(const char* dir) {
  MDB_env* env = open_env(dir, MDB_RDONLY);
  for (int pass = 0; pass < 4; pass++) {  // pass 0 maps the pages
    MDB_txn* txn;
    MDB_dbi dbi;
    MDB_cursor* cursor;
    CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    CHECK(mdb_dbi_open(txn, NULL, 0, &dbi));
    CHECK(mdb_cursor_open(txn, dbi, &cursor));
    MDB_val key, value;
    uint64_t count = 0, sum = 0;
    uint8_t out[VALUE_LENGTH];
    double t0 = now_s();
    for (int rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
      memcpy(out, value.mv_data, VALUE_LENGTH);
      __asm__ volatile("" : : "r"(out) : "memory");
      sum += out[count % VALUE_LENGTH] + ((const uint8_t*)key.mv_data)[key.mv_size - 1];
      count++;
    }
    double t = now_s() - t0;
    printf("scan%s: %lu keys in %.3f s  (%.1f ns/key) cs=%lu\n", pass ? "" : "(first, incl. page mapping)",
        (unsigned long)count, t, t * 1e9 / count, (unsigned long)sum);
    mdb_cursor_close(cursor);
    mdb_txn_abort(txn);
  }
  mdb_env_close(env);
}

typedef struct {
  const char* dir;
  uint32_t n;
  int readers;
  double seconds;
} RunArguments;

static void lmdb_reader(int index, const RunArguments* a) {
  MDB_env* env = open_env(a->dir, MDB_RDONLY);
  MDB_txn* txn;
  MDB_dbi dbi;
  MDB_cursor* cursor;
  MDB_val key, value;
  volatile uint8_t sink = 0;
  CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  CHECK(mdb_dbi_open(txn, NULL, 0, &dbi));
  CHECK(mdb_cursor_open(txn, dbi, &cursor));  // map every page first
  for (int rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT))
    sink += ((const uint8_t*)value.mv_data)[0];
  mdb_cursor_close(cursor);
  uint64_t state = 1000 + index, operations = 0, sum = 0;
  char k[MAX_KEY];
  uint8_t out[VALUE_LENGTH];
  wait_for_start();
  double c0 = cpu_s(), t0 = now_s(), t;
  for (;;) {
    for (int j = 0; j < 1024; j++) {
      key.mv_size = make_key(k, random_below(&state, a->n));
      key.mv_data = k;
      if ((operations + j) % 10000 == 0) {
        mdb_txn_reset(txn);
        CHECK(mdb_txn_renew(txn));
      }
      CHECK(mdb_get(txn, dbi, &key, &value));
      memcpy(out, value.mv_data, VALUE_LENGTH);
      __asm__ volatile("" : : "r"(out) : "memory");
      sum += out[j % VALUE_LENGTH];
    }
    operations += 1024;
    if ((t = now_s() - t0) >= a->seconds) break;
  }
  mdb_txn_abort(txn);
  double cpu = cpu_s() - c0;
  printf("  reader %d (rmode 0): %lu gets in %.2f s = %.1f ns/op, %.3f Mops/s; cpu %.2f s = %.1f ns/op-cpu  cs=%lu\n", index,
      (unsigned long)operations, t, t * 1e9 / operations, operations / t / 1e6, cpu, cpu * 1e9 / operations,
      (unsigned long)sum);
  mdb_env_close(env);
}

static void lmdb_writer(const RunArguments* a) {
  MDB_env* env = open_env(a->dir, MDB_NOSYNC);
  MDB_txn* txn;
  MDB_dbi dbi;
  CHECK(mdb_txn_begin(env, NULL, 0, &txn));
  CHECK(mdb_dbi_open(txn, NULL, 0, &dbi));
  CHECK(mdb_txn_commit(txn));
  uint64_t state = 777, operations = 0;
  uint32_t version = 1;
  char k[MAX_KEY];
  uint8_t v[VALUE_LENGTH];
  wait_for_start();
  double t0 = now_s(), t;
  for (;;) {
    CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    for (int j = 0; j < 1000; j++) {
      uint32_t i = random_below(&state, a->n);
      MDB_val key = {make_key(k, i), k}, value = {VALUE_LENGTH, v};
      make_value(v, i, version++);
      CHECK(mdb_put(txn, dbi, &key, &value, 0));
    }
    CHECK(mdb_txn_commit(txn));
    operations += 1000;
    if ((t = now_s() - t0) >= a->seconds) break;
  }
  printf("  writer: %lu puts in %.2f s = %.0f puts/s\n", (unsigned long)operations, t, operations / t);
  mdb_env_close(env);
}

static void lmdb_child(int index, void* argument) {
  const RunArguments* a = argument;
  if (index < a->readers) lmdb_reader(index, a);
  else lmdb_writer(a);
}

// ---- private hash table -------------------------------------------------------

// One entry per key, cache-line aligned: length byte, key, value.
typedef struct {
  uint8_t length;
  char key[MAX_KEY];
  uint8_t value[VALUE_LENGTH];
} __attribute__((aligned(64))) Entry;

static Entry* g_entries;
static uint32_t* g_slots;  // entry index + 1, 0 = empty; linear probing
static uint64_t g_mask;

static inline uint64_t hash_key(const char* k, int length) {
  uint64_t h = 0x243F6A8885A308D3ULL ^ (uint64_t)length * 0x9E3779B97F4A7C15ULL;
  for (int at = 0; at < length; at += 8) {
    uint64_t word = 0;
    memcpy(&word, k + at, length - at < 8 ? length - at : 8);
    h = (h ^ word) * 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 29;
  }
  h *= 0x94D049BB133111EBULL;
  return h ^ (h >> 32);
}

static inline const Entry* hash_find(const char* k, int length) {
  for (uint64_t i = hash_key(k, length) & g_mask;; i = (i + 1) & g_mask) {
    uint32_t slot = g_slots[i];
    if (!slot) return NULL;
    const Entry* e = &g_entries[slot - 1];
    if (e->length == length && memcmp(e->key, k, length) == 0) return e;
  }
}

static void hash_lookup(uint32_t n, uint64_t operations) {
  uint32_t* order = make_permutation(n, 42);
  if (posix_memalign((void**)&g_entries, 64, sizeof(Entry) * (size_t)n)) exit(1);
  uint64_t capacity = 1;
  while (capacity < 2ULL * n) capacity <<= 1;
  g_mask = capacity - 1;
  g_slots = calloc(capacity, sizeof(uint32_t));
  for (uint32_t j = 0; j < n; j++) {
    Entry* e = &g_entries[j];
    e->length = (uint8_t)make_key(e->key, order[j]);
    make_value(e->value, order[j], 0);
    uint64_t i = hash_key(e->key, e->length) & g_mask;
    while (g_slots[i]) i = (i + 1) & g_mask;
    g_slots[i] = j + 1;
  }
  uint64_t state = 1, sum = 0;
  char k[MAX_KEY];
  uint8_t out[VALUE_LENGTH];
  double t0 = 0;
  for (uint64_t j = 0; j < operations + operations / 10; j++) {  // the first tenth warms up
    if (j == operations / 10) t0 = now_s();
    uint32_t i = random_below(&state, n);
    int length = make_key(k, i);
    const Entry* e = hash_find(k, length);
    if (!e) { fprintf(stderr, "missing key %u\n", i); exit(1); }
    memcpy(out, e->value, VALUE_LENGTH);
    __asm__ volatile("" : : "r"(out) : "memory");
    sum += out[j % VALUE_LENGTH];
  }
  double t = now_s() - t0;
  printf("hash                     1 proc: %.1f ns/op  %.2f Mops/s  (entries of %zu bytes, cs %lu)\n", t * 1e9 / operations,
      operations / t / 1e6, sizeof(Entry), (unsigned long)sum);
}

// ---- main -------------------------------------------------------------------

int main(int argc, char** argv) {
  if (argc < 3) goto usage;
  if (!strcmp(argv[1], "user")) g_shape = SHAPE_USER;
  else if (!strcmp(argv[1], "random16")) g_shape = SHAPE_RANDOM16;
  else if (!strcmp(argv[1], "url")) g_shape = SHAPE_URL;
  else goto usage;
  const char* command = argv[2];
  if (argc == 6 && !strcmp(command, "load")) {
    lmdb_load(argv[3], (uint32_t)atol(argv[4]), (uint32_t)atol(argv[5]));
  } else if (argc == 4 && !strcmp(command, "scan")) {
    lmdb_scan(argv[3]);
  } else if (argc == 8 && !strcmp(command, "run")) {
    RunArguments a = {argv[3], (uint32_t)atol(argv[4]), atoi(argv[5]), atof(argv[7])};
    int writers = atoi(argv[6]);
    if (a.readers + writers < 1 || a.readers + writers > 64) goto usage;
    printf("run N=%u readers=%d writer=%d secs=%.1f rmode=0\n", a.n, a.readers, writers, a.seconds);
    run_children(a.readers + writers, lmdb_child, &a);
  } else if (argc == 4 && !strcmp(command, "keys")) {
    char k[MAX_KEY];
    for (uint32_t i = 0, n = (uint32_t)atol(argv[3]); i < n; i++) {
      int length = make_key(k, i);
      for (int j = 0; j < length; j++) printf("%02x", (uint8_t)k[j]);
      printf("\n");
    }
  } else if (argc == 5 && !strcmp(command, "lookup")) {
    hash_lookup((uint32_t)atol(argv[3]), (uint64_t)atoll(argv[4]));
  } else {
    goto usage;
  }
  return 0;
usage:
  fprintf(stderr, "usage: bench_shapes user|random16|url load DIR N BATCH | scan DIR | run DIR N R W SECS | lookup N OPS | keys N\n");
  return 2;
}
