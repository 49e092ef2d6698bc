/*
 * workload.c - breadboard compute benchmark (rv64imac, bare metal, M-mode).
 *
 * A fixed, deterministic mix of integer work:
 *   - CRC-32 (IEEE, reflected, table driven) over a 64 KiB buffer
 *   - heapsort of 8192 32-bit keys (plus a sortedness check)
 *   - 40x40 64-bit integer matrix multiply
 *   - string processing: build a text of pseudo-random words, tokenize,
 *     reverse each word, upper-case, FNV-1a hash and count a substring
 * repeated ROUNDS times, each round perturbing the inputs with the
 * previous results.  All results are folded into one 64-bit checksum, so
 * two emulators that execute the program correctly print the same value.
 * Prints:
 *   workload checksum: 0x<16 hex digits>
 *   workload minstret: <retired instructions between start and end>
 * then exits through the sifive_test finisher (0x5555).
 */

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long u64;
typedef long i64;

#ifndef ROUNDS
#define ROUNDS 480
#endif

#define UART_BASE     0x10000000UL
#define FINISHER_BASE 0x00100000UL

/* ------------------------------------------------------------ console */
static void putc(char c)
{
        volatile u8 *uart = (volatile u8 *)UART_BASE;
        for (int i = 0; i < 1000000; i++)
                if (uart[5] & 0x20)
                        break;
        uart[0] = (u8)c;
}

static void puts(const char *s)
{
        while (*s)
                putc(*s++);
}

static void puthex64(u64 v)
{
        puts("0x");
        for (int i = 15; i >= 0; i--)
                putc("0123456789abcdef"[(v >> (4 * i)) & 0xf]);
}

static void putdec(u64 v)
{
        char buf[21];
        int i = 0;
        do {
                buf[i++] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        while (i)
                putc(buf[--i]);
}

static void finish(u32 code)
{
        *(volatile u32 *)FINISHER_BASE = code ? (0x3333 | (code << 16)) : 0x5555;
        for (;;)
                __asm__ volatile ("wfi");
}

void trap_handler(u64 mcause, u64 mepc)
{
        puts("workload: unexpected trap mcause=");
        puthex64(mcause);
        puts(" mepc=");
        puthex64(mepc);
        putc('\n');
        finish(1);
}

static u64 rdinstret(void)
{
        u64 v;
        __asm__ volatile ("csrr %0, minstret" : "=r"(v));
        return v;
}

/* ------------------------------------------------------------ helpers */
static u64 rng_state;

static u64 rng(void)                    /* xorshift64* */
{
        u64 x = rng_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng_state = x;
        return x * 0x2545f4914f6cdd1dUL;
}

static u64 mix(u64 h, u64 v)            /* fold a result into the checksum */
{
        h ^= v + 0x9e3779b97f4a7c15UL + (h << 6) + (h >> 2);
        h *= 0xff51afd7ed558ccdUL;
        h ^= h >> 33;
        return h;
}

/* ------------------------------------------------------------ CRC-32 */
#define CRC_BUF 65536
static u32 crc_table[256];
static u8 crc_buf[CRC_BUF];

static void crc_init(void)
{
        for (u32 i = 0; i < 256; i++) {
                u32 c = i;
                for (int k = 0; k < 8; k++)
                        c = (c & 1) ? (0xedb88320u ^ (c >> 1)) : (c >> 1);
                crc_table[i] = c;
        }
}

static u32 crc32(const u8 *p, u64 n)
{
        u32 c = 0xffffffffu;
        while (n--)
                c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
        return c ^ 0xffffffffu;
}

/* ------------------------------------------------------------ heapsort */
#define SORT_N 8192
static u32 keys[SORT_N];

static void sift_down(u32 *a, u64 start, u64 end)
{
        u64 root = start;
        while (2 * root + 1 < end) {
                u64 child = 2 * root + 1;
                if (child + 1 < end && a[child] < a[child + 1])
                        child++;
                if (a[root] >= a[child])
                        return;
                u32 t = a[root];
                a[root] = a[child];
                a[child] = t;
                root = child;
        }
}

static void heapsort(u32 *a, u64 n)
{
        for (u64 i = n / 2; i-- > 0;)
                sift_down(a, i, n);
        for (u64 end = n - 1; end > 0; end--) {
                u32 t = a[0];
                a[0] = a[end];
                a[end] = t;
                sift_down(a, 0, end);
        }
}

/* ------------------------------------------------------------ matmul */
#define MAT_N 40
static u64 mat_a[MAT_N][MAT_N], mat_b[MAT_N][MAT_N], mat_c[MAT_N][MAT_N];

static void matmul(void)
{
        for (int i = 0; i < MAT_N; i++)
                for (int j = 0; j < MAT_N; j++) {
                        u64 s = 0;
                        for (int k = 0; k < MAT_N; k++)
                                s += mat_a[i][k] * mat_b[k][j];
                        mat_c[i][j] = s;
                }
}

/* ------------------------------------------------------------ strings */
#define TEXT_MAX 16384
static char text[TEXT_MAX + 64];
static const char *const syllables[16] = {
        "ka", "ri", "bo", "sen", "ta", "mu", "lor", "ei",
        "qua", "de", "xi", "no", "pla", "ru", "zo", "an",
};

static u64 build_text(void)
{
        u64 len = 0;
        while (len < TEXT_MAX) {
                u64 r = rng();
                int nsyl = 1 + (int)(r & 3);
                r >>= 2;
                for (int s = 0; s < nsyl; s++, r >>= 4) {
                        const char *p = syllables[r & 15];
                        while (*p)
                                text[len++] = *p++;
                }
                text[len++] = (r & 7) == 0 ? '.' : ' ';
        }
        text[len] = 0;
        return len;
}

static u64 process_text(u64 len)
{
        u64 words = 0, hash = 0xcbf29ce484222325UL, matches = 0;
        u64 i = 0;
        while (i < len) {
                while (i < len && (text[i] == ' ' || text[i] == '.'))
                        i++;
                u64 start = i;
                while (i < len && text[i] != ' ' && text[i] != '.')
                        i++;
                if (i == start)
                        break;
                words++;
                /* reverse the word in place, upper-casing vowels */
                for (u64 a = start, b = i - 1; a < b; a++, b--) {
                        char t = text[a];
                        text[a] = text[b];
                        text[b] = t;
                }
                for (u64 k = start; k < i; k++) {
                        char c = text[k];
                        if (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u')
                                c = (char)(c - 'a' + 'A');
                        text[k] = c;
                        hash = (hash ^ (u8)c) * 0x100000001b3UL;
                }
        }
        /* naive substring search for "Or" (reversed "ro"/"lor"-style pieces) */
        for (u64 k = 0; k + 1 < len; k++)
                if (text[k] == 'O' && text[k + 1] == 'l')
                        matches++;
        return hash ^ (words << 32) ^ matches;
}

/* ------------------------------------------------------------ main */
void workload_main(void)
{
        u64 sum = 0x6a09e667f3bcc908UL;
        u64 t0 = rdinstret();

        rng_state = 0x853c49e6748fea9bUL;
        crc_init();
        for (u64 i = 0; i < CRC_BUF; i++)
                crc_buf[i] = (u8)rng();
        for (int i = 0; i < MAT_N; i++)
                for (int j = 0; j < MAT_N; j++) {
                        mat_a[i][j] = rng() >> 40;
                        mat_b[i][j] = rng() >> 40;
                }

        for (int round = 0; round < ROUNDS; round++) {
                /* CRC: 4 passes over the buffer, perturbing it between passes */
                for (int pass = 0; pass < 4; pass++) {
                        u32 c = crc32(crc_buf, CRC_BUF);
                        sum = mix(sum, c);
                        crc_buf[(c >> 3) & (CRC_BUF - 1)] ^= (u8)(c | 1);
                }

                /* sort */
                for (int i = 0; i < SORT_N; i++)
                        keys[i] = (u32)(rng() >> 32);
                heapsort(keys, SORT_N);
                for (int i = 1; i < SORT_N; i++)
                        if (keys[i - 1] > keys[i]) {
                                puts("workload: sort check failed\n");
                                finish(2);
                        }
                sum = mix(sum, keys[0]);
                sum = mix(sum, keys[SORT_N / 2]);
                sum = mix(sum, keys[SORT_N - 1]);

                /* matrix multiply, then feed the result back into A */
                matmul();
                u64 trace = 0;
                for (int i = 0; i < MAT_N; i++) {
                        trace += mat_c[i][i];
                        for (int j = 0; j < MAT_N; j++)
                                mat_a[i][j] = (mat_c[i][j] >> 17) & 0xffffff;
                }
                sum = mix(sum, trace);
                sum = mix(sum, mat_c[MAT_N - 1][0]);

                /* strings */
                u64 len = build_text();
                sum = mix(sum, process_text(len));
                sum = mix(sum, crc32((const u8 *)text, len));
        }

        u64 t1 = rdinstret();
        puts("workload checksum: ");
        puthex64(sum);
        putc('\n');
        puts("workload minstret: ");
        putdec(t1 - t0);
        putc('\n');
        finish(0);
}
