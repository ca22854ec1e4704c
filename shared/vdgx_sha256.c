/*  vdgx_sha256.c - SHA-256 per FIPS 180-4 sections 4.1.2, 4.2.2, 5.1.1, 6.2.

    The compression runs on the x86 SHA extensions (SHA-NI: sha256rnds2 / msg1 / msg2) when
    the CPU has them, checked once at run time; else in plain C (s_compress_c, the
    reference). The broker hashes every output as its chunks arrive, on its own thread, so
    this is per-byte cost of every result (the plain C is about 65 instructions a byte).
*/
#include "vdgx_sha256.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define S_HAVE_SHANI 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t s_k [64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

static inline uint32_t
s_rotr (uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void
s_compress_c (uint32_t state [8], const uint8_t block [64])
{
    uint32_t w [64];
    for (int t = 0; t < 16; t++)
        w [t] = (uint32_t) block [4 * t] << 24 | (uint32_t) block [4 * t + 1] << 16
              | (uint32_t) block [4 * t + 2] << 8 | (uint32_t) block [4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = s_rotr (w [t - 15], 7) ^ s_rotr (w [t - 15], 18) ^ (w [t - 15] >> 3);
        uint32_t s1 = s_rotr (w [t - 2], 17) ^ s_rotr (w [t - 2], 19) ^ (w [t - 2] >> 10);
        w [t] = w [t - 16] + s0 + w [t - 7] + s1;
    }
    uint32_t a = state [0], b = state [1], c = state [2], d = state [3];
    uint32_t e = state [4], f = state [5], g = state [6], h = state [7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = h + (s_rotr (e, 6) ^ s_rotr (e, 11) ^ s_rotr (e, 25))
                    + ((e & f) ^ (~e & g)) + s_k [t] + w [t];
        uint32_t t2 = (s_rotr (a, 2) ^ s_rotr (a, 13) ^ s_rotr (a, 22))
                    + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    state [0] += a; state [1] += b; state [2] += c; state [3] += d;
    state [4] += e; state [5] += f; state [6] += g; state [7] += h;
}

bool vdgx_sha256_portable = false;

#ifdef S_HAVE_SHANI
//  Blocks through the SHA extensions. The state is kept as the instructions want it:
//  ABEF and CDGH in two registers; each group of four rounds takes one message vector,
//  the vectors after the first four made by msg1 (+ sigma0), alignr (+ W[t-7]) and msg2
//  (+ sigma1).
__attribute__ ((target ("sha,sse4.1,ssse3"))) static void
s_compress_shani (uint32_t state [8], const uint8_t *p, size_t blocks)
{
    const __m128i bswap = _mm_set_epi64x (0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32 (_mm_loadu_si128 ((const __m128i *) state), 0xB1);       //  CDAB
    __m128i st1 = _mm_shuffle_epi32 (_mm_loadu_si128 ((const __m128i *) (state + 4)), 0x1B); //  EFGH
    __m128i st0 = _mm_alignr_epi8 (tmp, st1, 8);                                              //  ABEF
    st1 = _mm_blend_epi16 (st1, tmp, 0xF0);                                                   //  CDGH
    for (; blocks; blocks--, p += 64) {
        __m128i save0 = st0, save1 = st1, w [16];
        for (int g = 0; g < 4; g++)
            w [g] = _mm_shuffle_epi8 (_mm_loadu_si128 ((const __m128i *) (p + 16 * g)), bswap);
        for (int g = 4; g < 16; g++) {
            __m128i t = _mm_sha256msg1_epu32 (w [g - 4], w [g - 3]);
            t = _mm_add_epi32 (t, _mm_alignr_epi8 (w [g - 1], w [g - 2], 4));
            w [g] = _mm_sha256msg2_epu32 (t, w [g - 1]);
        }
        for (int g = 0; g < 16; g++) {
            __m128i msg = _mm_add_epi32 (w [g], _mm_loadu_si128 ((const __m128i *) (s_k + 4 * g)));
            st1 = _mm_sha256rnds2_epu32 (st1, st0, msg);
            st0 = _mm_sha256rnds2_epu32 (st0, st1, _mm_shuffle_epi32 (msg, 0x0E));
        }
        st0 = _mm_add_epi32 (st0, save0);
        st1 = _mm_add_epi32 (st1, save1);
    }
    tmp = _mm_shuffle_epi32 (st0, 0x1B);                                                      //  FEBA
    st1 = _mm_shuffle_epi32 (st1, 0xB1);                                                      //  DCHG
    _mm_storeu_si128 ((__m128i *) state, _mm_blend_epi16 (tmp, st1, 0xF0));                   //  DCBA
    _mm_storeu_si128 ((__m128i *) (state + 4), _mm_alignr_epi8 (st1, tmp, 8));                //  HGFE
}

static bool
s_cpu_has_shani (void)
{
    static int has = -1;
    if (has < 0) {
        unsigned a, b, c, d;
        bool sha = __get_cpuid_count (7, 0, &a, &b, &c, &d) && (b & (1u << 29));
        bool sse = __get_cpuid (1, &a, &b, &c, &d) && (c & bit_SSE4_1) && (c & bit_SSSE3);
        has = sha && sse;
    }
    return has;
}
#endif

//  blocks x 64 bytes at p into state.
static void
s_compress_blocks (uint32_t state [8], const uint8_t *p, size_t blocks)
{
#ifdef S_HAVE_SHANI
    if (!vdgx_sha256_portable && s_cpu_has_shani ()) {
        s_compress_shani (state, p, blocks);
        return;
    }
#endif
    for (; blocks; blocks--, p += 64)
        s_compress_c (state, p);
}

static void
s_compress (uint32_t state [8], const uint8_t block [64])
{
    s_compress_blocks (state, block, 1);
}

vdgx_sha256_t *
vdgx_sha256_new (void)
{
    vdgx_sha256_t *self = malloc (sizeof *self);
    if (self)
        vdgx_sha256_init (self);
    return self;
}

void
vdgx_sha256_destroy (vdgx_sha256_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

void
vdgx_sha256_init (vdgx_sha256_t *self)
{
    static const uint32_t h0 [8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
    };
    assert (self);
    memcpy (self->state, h0, sizeof h0);
    self->length = 0;
    self->fill = 0;
}

void
vdgx_sha256_update (vdgx_sha256_t *self, const void *data, size_t size)
{
    assert (self);
    assert (data || size == 0);
    const uint8_t *p = data;
    self->length += size;
    if (self->fill) {
        size_t take = 64 - self->fill < size? 64 - self->fill: size;
        memcpy (self->block + self->fill, p, take);
        self->fill += take;
        p += take;
        size -= take;
        if (self->fill < 64)
            return;
        s_compress (self->state, self->block);
        self->fill = 0;
    }
    if (size >= 64) {
        s_compress_blocks (self->state, p, size / 64);
        p += size / 64 * 64;
        size %= 64;
    }
    if (size) {
        memcpy (self->block, p, size);
        self->fill = size;
    }
}

void
vdgx_sha256_final (vdgx_sha256_t *self, uint8_t digest [VDGX_SHA256_SIZE])
{
    assert (self);
    uint64_t bits = self->length * 8;
    //  Padding: 0x80, zeros up to 56 mod 64, then the 64-bit big-endian bit length.
    self->block [self->fill++] = 0x80;
    if (self->fill > 56) {
        memset (self->block + self->fill, 0, 64 - self->fill);
        s_compress (self->state, self->block);
        self->fill = 0;
    }
    memset (self->block + self->fill, 0, 56 - self->fill);
    for (int i = 0; i < 8; i++)
        self->block [56 + i] = (uint8_t) (bits >> (56 - 8 * i));
    s_compress (self->state, self->block);
    for (int i = 0; i < 8; i++) {
        digest [4 * i] = (uint8_t) (self->state [i] >> 24);
        digest [4 * i + 1] = (uint8_t) (self->state [i] >> 16);
        digest [4 * i + 2] = (uint8_t) (self->state [i] >> 8);
        digest [4 * i + 3] = (uint8_t) self->state [i];
    }
    self->fill = 0;
}

void
vdgx_sha256_hmac (const void *key, size_t key_size, const void *const *parts,
                  const size_t *sizes, uint8_t mac [VDGX_SHA256_SIZE])
{
    assert (key || key_size == 0);
    assert (parts && sizes && mac);
    uint8_t k [64] = { 0 };
    if (key_size > sizeof k)
        vdgx_sha256_digest (key, key_size, k);      //  a long key is hashed first
    else
    if (key_size)
        memcpy (k, key, key_size);
    uint8_t pad [64], inner [VDGX_SHA256_SIZE];
    vdgx_sha256_t ctx;
    for (int i = 0; i < 64; i++)
        pad [i] = k [i] ^ 0x36;
    vdgx_sha256_init (&ctx);
    vdgx_sha256_update (&ctx, pad, sizeof pad);
    for (size_t i = 0; parts [i]; i++)
        vdgx_sha256_update (&ctx, parts [i], sizes [i]);
    vdgx_sha256_final (&ctx, inner);
    for (int i = 0; i < 64; i++)
        pad [i] = k [i] ^ 0x5c;
    vdgx_sha256_init (&ctx);
    vdgx_sha256_update (&ctx, pad, sizeof pad);
    vdgx_sha256_update (&ctx, inner, sizeof inner);
    vdgx_sha256_final (&ctx, mac);
}

void
vdgx_sha256_to_hex (const uint8_t digest [VDGX_SHA256_SIZE], char hex [VDGX_SHA256_HEX_SIZE])
{
    static const char digits [] = "0123456789abcdef";
    for (int i = 0; i < VDGX_SHA256_SIZE; i++) {
        hex [2 * i] = digits [digest [i] >> 4];
        hex [2 * i + 1] = digits [digest [i] & 15];
    }
    hex [64] = 0;
}

void
vdgx_sha256_final_hex (vdgx_sha256_t *self, char hex [VDGX_SHA256_HEX_SIZE])
{
    uint8_t digest [VDGX_SHA256_SIZE];
    vdgx_sha256_final (self, digest);
    vdgx_sha256_to_hex (digest, hex);
}

void
vdgx_sha256_digest (const void *data, size_t size, uint8_t digest [VDGX_SHA256_SIZE])
{
    vdgx_sha256_t ctx;
    vdgx_sha256_init (&ctx);
    vdgx_sha256_update (&ctx, data, size);
    vdgx_sha256_final (&ctx, digest);
}

void
vdgx_sha256_hex (const void *data, size_t size, char hex [VDGX_SHA256_HEX_SIZE])
{
    vdgx_sha256_t ctx;
    vdgx_sha256_init (&ctx);
    vdgx_sha256_update (&ctx, data, size);
    vdgx_sha256_final_hex (&ctx, hex);
}

int
vdgx_sha256_file (const char *path, char hex [VDGX_SHA256_HEX_SIZE])
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return -1;
    vdgx_sha256_t ctx;
    vdgx_sha256_init (&ctx);
    uint8_t buffer [65536];
    size_t got;
    while ((got = fread (buffer, 1, sizeof buffer, file)) > 0)
        vdgx_sha256_update (&ctx, buffer, got);
    int failed = ferror (file);
    fclose (file);
    if (failed) {
        errno = EIO;
        return -1;
    }
    vdgx_sha256_final_hex (&ctx, hex);
    return 0;
}

bool
vdgx_sha256_is_hex (const char *text)
{
    if (!text)
        return false;
    size_t i;
    for (i = 0; text [i]; i++)
        if (i >= 64 || !((text [i] >= '0' && text [i] <= '9') || (text [i] >= 'a' && text [i] <= 'f')))
            return false;
    return i == 64;
}

//  --------------------------------------------------------------------------
//  Selftest

#undef NDEBUG
#include <assert.h>
#include <time.h>
#include <unistd.h>

void
vdgx_sha256_test (bool verbose)
{
    //  HMAC-SHA256: RFC 4231 test cases 2 (short key) and 6 (key longer than a block).
    {
        uint8_t mac [VDGX_SHA256_SIZE];
        char hex [VDGX_SHA256_HEX_SIZE];
        const char *data = "what do ya want for nothing?";
        const void *parts [] = { data, data + 10, NULL };
        size_t sizes [] = { 10, strlen (data) - 10 };
        vdgx_sha256_hmac ("Jefe", 4, parts, sizes, mac);
        vdgx_sha256_to_hex (mac, hex);
        assert (strcmp (hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") == 0);
        uint8_t key [131];
        memset (key, 0xaa, sizeof key);
        const char *big = "Test Using Larger Than Block-Size Key - Hash Key First";
        const void *one [] = { big, NULL };
        size_t one_size [] = { strlen (big) };
        vdgx_sha256_hmac (key, sizeof key, one, one_size, mac);
        vdgx_sha256_to_hex (mac, hex);
        assert (strcmp (hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54") == 0);
    }
    //  FIPS 180-2 appendix B / NIST CAVS examples.
    static const struct { const char *text; const char *hex; } vectors [] = {
        { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
        { "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
          "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
    };
    char hex [VDGX_SHA256_HEX_SIZE];
    for (size_t i = 0; i < sizeof vectors / sizeof vectors [0]; i++) {
        vdgx_sha256_hex (vectors [i].text, strlen (vectors [i].text), hex);
        assert (strcmp (hex, vectors [i].hex) == 0);
        assert (vdgx_sha256_is_hex (hex));
    }
    //  One million 'a' (FIPS 180-2 B.3), fed in uneven pieces to exercise buffering.
    vdgx_sha256_t *ctx = vdgx_sha256_new ();
    assert (ctx);
    static uint8_t a [1000];
    memset (a, 'a', sizeof a);
    size_t left = 1000000, piece = 1;
    while (left) {
        size_t take = piece < left? piece: left;
        vdgx_sha256_update (ctx, a, take);
        left -= take;
        piece = piece % 987 + 13;      //  1..999, never past the buffer
    }
    vdgx_sha256_final_hex (ctx, hex);
    assert (strcmp (hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
    vdgx_sha256_destroy (&ctx);
    assert (ctx == NULL);

    //  Padding edges: streaming in random splits equals one-shot, for lengths 0..200.
    uint8_t data [200];
    unsigned seed = 12345;
    for (size_t i = 0; i < sizeof data; i++)
        data [i] = (uint8_t) ((seed = seed * 1103515245 + 12345) >> 16);
    for (size_t len = 0; len <= sizeof data; len++) {
        char one [VDGX_SHA256_HEX_SIZE], two [VDGX_SHA256_HEX_SIZE];
        vdgx_sha256_hex (data, len, one);
        vdgx_sha256_t s;
        vdgx_sha256_init (&s);
        size_t split = len? (seed = seed * 1103515245 + 12345) % len: 0;
        vdgx_sha256_update (&s, data, split);
        vdgx_sha256_update (&s, data + split, len - split);
        vdgx_sha256_final_hex (&s, two);
        assert (strcmp (one, two) == 0);
    }
    //  The 55/56/64-byte boundary vectors of 'a' repeated (independently known digests).
    vdgx_sha256_hex (a, 55, hex);
    assert (strcmp (hex, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318") == 0);
    vdgx_sha256_hex (a, 56, hex);
    assert (strcmp (hex, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a") == 0);
    vdgx_sha256_hex (a, 64, hex);
    assert (strcmp (hex, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb") == 0);

    //  The SHA-extension path (where this CPU has it) against the plain C reference: random
    //  bytes, every length to 300 and a large one, in random pieces.
    {
        static uint8_t big [70000];
        for (size_t i = 0; i < sizeof big; i++)
            big [i] = (uint8_t) ((seed = seed * 1103515245 + 12345) >> 16);
        size_t lens [302];
        for (size_t i = 0; i <= 300; i++)
            lens [i] = i;
        lens [301] = sizeof big;
        for (size_t i = 0; i < 302; i++) {
            char fast [VDGX_SHA256_HEX_SIZE], slow [VDGX_SHA256_HEX_SIZE];
            vdgx_sha256_t s;
            vdgx_sha256_init (&s);
            size_t at = 0;
            while (at < lens [i]) {
                size_t take = (seed = seed * 1103515245 + 12345) % 9000;
                take = take < lens [i] - at? take: lens [i] - at;
                vdgx_sha256_update (&s, big + at, take);
                at += take;
            }
            vdgx_sha256_final_hex (&s, fast);
            vdgx_sha256_portable = true;
            vdgx_sha256_hex (big, lens [i], slow);
            vdgx_sha256_portable = false;
            assert (strcmp (fast, slow) == 0);
        }
        if (verbose) {
#ifdef S_HAVE_SHANI
            printf ("(SHA extensions: %s) ", s_cpu_has_shani ()? "yes": "no");
#endif
        }
    }

    //  File hashing equals memory hashing; missing file fails.
    char path [] = "/tmp/vdgx-sha256-XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    assert (write (fd, data, sizeof data) == (ssize_t) sizeof data);
    close (fd);
    char want [VDGX_SHA256_HEX_SIZE];
    vdgx_sha256_hex (data, sizeof data, want);
    assert (vdgx_sha256_file (path, hex) == 0 && strcmp (hex, want) == 0);
    unlink (path);
    assert (vdgx_sha256_file (path, hex) == -1);

    assert (!vdgx_sha256_is_hex ("abc"));
    assert (!vdgx_sha256_is_hex ("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));

    //  Throughput (informational).
    if (verbose) {
        size_t n = 64 << 20;
        uint8_t *buf = calloc (1, n);
        assert (buf);
        for (int portable = 1; portable >= 0; portable--) {
            vdgx_sha256_portable = portable;
            struct timespec t0, t1;
            clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &t0);
            vdgx_sha256_hex (buf, n, hex);
            clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &t1);
            double s = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
            printf ("sha256 %s: %.1f MB per CPU-s ", portable? "plain C": "default", (double) n / s / 1e6);
        }
        vdgx_sha256_portable = false;
        free (buf);
    }
}
