/* The machine's own 1 -> 2 core scaling, as a control for the skip-gram's (issue 22): run one instance, then two at once,
   and compare the per-instance rates. Mode "compute": 8 independent multiply-add chains, no memory traffic. Mode "rows":
   a dot product and an update of two random 256-byte rows of a 40 MB table per iteration (SGNS's memory pattern).
   gcc -O2 -march=native -o /tmp/machine_scaling test/Allauzen.ML.Benchmarks/Diachronic/machine_scaling.c
   for m in compute rows; do /tmp/machine_scaling $m 3; (/tmp/machine_scaling $m 3 & /tmp/machine_scaling $m 3; wait); done */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  int rows_mode = argc > 1 && strcmp(argv[1], "rows") == 0;
  double secs = argc > 2 ? atof(argv[2]) : 2.0, t0 = now(), el;
  long it = 0;
  if (!rows_mode) {
    double a[8] = {1, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7};
    do {
      for (int r = 0; r < 1000000; r++)
        for (int j = 0; j < 8; j++) a[j] = a[j] * 0.9999999 + 1e-7;
      it++;
    } while ((el = now() - t0) < secs);
    printf("compute: %.1f M iterations/s (%g)\n", it / el, a[0] + a[7]);
    return 0;
  }
  size_t rows = (40u << 20) >> 8;
  float* t = aligned_alloc(64, rows * 256);
  for (size_t i = 0; i < rows * 64; i++) t[i] = 1e-3f * (i % 97);
  uint64_t s = 88172645463325252ull;
  float acc = 0;
  do {
    for (int r = 0; r < 100000; r++) {
      s ^= s << 13; s ^= s >> 7; s ^= s << 17;
      float* a = t + (s % rows) * 64;
      float* b = t + ((s >> 32) % rows) * 64;
      float d = 0;
      for (int j = 0; j < 64; j++) d += a[j] * b[j];
      for (int j = 0; j < 64; j++) a[j] += 1e-6f * b[j] * d;
      acc += d;
    }
    it++;
  } while ((el = now() - t0) < secs);
  printf("rows: %.2f M row pairs/s (%g)\n", it * 0.1 / el, acc);
  return 0;
}
