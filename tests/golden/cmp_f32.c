/*
 * tests/golden/cmp_f32.c — compares two f32 logit dumps [rows, vocab]
 * (--dump-logits against a PyTorch reference).
 *
 *   cmp_f32 REF GOT VOCAB TOL [STRIDE]
 *
 * With STRIDE, REF holds only the columns 0, STRIDE, 2 STRIDE ... of each
 * row (a large vocabulary, sampled) and GOT the full rows.
 * Row r passes when max_i |got - ref| <= TOL * max_i |ref| (the error
 * relative to the row's scale: logits near zero make element-wise relative
 * errors meaningless). Prints the worst row's relative error; exit 0 when
 * every row passes and the sizes agree, 1 otherwise.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static float *load(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *p = malloc(bytes > 0 ? (size_t)bytes : 1);
    if (p && bytes > 0 && fread(p, 1, (size_t)bytes, f) != (size_t)bytes) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = bytes / 4;
    return p;
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: cmp_f32 REF GOT VOCAB TOL [STRIDE]\n");
        return 2;
    }
    long nr, ng, vocab = atol(argv[3]), stride = argc == 6 ? atol(argv[5]) : 1;
    double tol = atof(argv[4]), worst = 0;
    float *r = load(argv[1], &nr), *g = load(argv[2], &ng);
    long cols = stride > 0 ? (vocab + stride - 1) / stride : 0;
    if (!r || !g || vocab <= 0 || cols <= 0 || ng % vocab || nr != ng / vocab * cols) {
        fprintf(stderr, "cmp_f32: %s (%ld floats) and %s (%ld floats) do not match as [rows, %ld/%ld]\n", argv[1],
                nr, argv[2], ng, vocab, stride);
        return 1;
    }
    long bad_row = -1;
    for (long row = 0; row < ng / vocab; row++) {
        double mx = 0, d = 0;
        for (long i = 0; i < cols; i++) {
            double a = r[row * cols + i], b = g[row * vocab + i * stride];
            if (fabs(a) > mx) mx = fabs(a);
            if (!(fabs(a - b) <= d)) d = isnan(b) ? INFINITY : fabs(a - b);
        }
        double rel = mx > 0 ? d / mx : d;
        if (!(rel <= worst)) worst = rel, bad_row = row;
    }
    printf("%ld rows: max relative error %.3g (row %ld), tolerance %g\n", ng / vocab, worst, bad_row, tol);
    free(r);
    free(g);
    return worst <= tol ? 0 : 1;
}
