/*
 * The log verifier's hot loop in C (src/log/verify.ts calls it through koffi): checks a
 * run of plain entry lines of a segment, from a byte offset, against the chain position
 * in `st`, and stops at the first line it is not sure of. It never decides that the log
 * is wrong: whatever it stops at (a seal, an agent record, an unusual or a bad line) is
 * checked again by the TypeScript code, which alone writes the messages. A line it passes
 * is one that code would pass too: same canonical bytes, same hashes (SHA-256 from the
 * system's libcrypto, which uses the CPU's SHA extensions), stricter form.
 *
 * Per line: the exact chain suffix, chain.prev = the previous entry's hash (lowercase hex),
 * seq = the next one, `"time"` and `"host"` members where the agent writes them and kind
 * not "agent", SHA-256(prev ‖ canonical bytes) = chain.hash; then the entry's Merkle leaf
 * SHA-256(0x00 ‖ hash) is appended to the compact range (nodes SHA-256(0x01 ‖ l ‖ r)).
 *
 * The state buffer (little-endian doubles are exact for every seq and size below 2^53):
 *      0  head[32]          the last entry's hash
 *     32  head_hex[64]      its lowercase hex
 *     96  f64 expect_seq
 *    104  f64 range_size    leaves in the Merkle tree so far
 *    112  range[64][32]     its perfect subtrees, largest first (popcount(range_size) of them)
 *   2160  f64 lines         out: entry lines checked
 *   2168  f64 next          out: offset after the last of them
 *   2176  f64 last_cut      out: where the last one's chain suffix starts
 *   2184  f64 time_from, time_to: out: the last one's time digits
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* libcrypto's SHA-256 (declared here so only the runtime library is needed, not its
 * headers; the context layout is OpenSSL's SHA256_CTX, stable since 0.9.8). */
typedef struct { unsigned int h[8]; unsigned int Nl, Nh; unsigned int data[16]; unsigned int num, md_len; } SHA256_CTX;
int SHA256_Init(SHA256_CTX *c);
int SHA256_Update(SHA256_CTX *c, const void *data, size_t len);
int SHA256_Final(unsigned char *md, SHA256_CTX *c);

#define SUFFIX 159 /* ,"chain":{"prev":"<64>","hash":"<64>"}} */
static const char PREFIX[] = ",\"chain\":{\"prev\":\"";
static const char MIDDLE[] = "\",\"hash\":\"";
static const char TIME[] = ",\"time\":\"";
static const char HOST[] = ",\"host\":\"";
static const char AGENT[] = ",\"kind\":\"agent\"";
static const char HEXD[] = "0123456789abcdef";

static void sha(const uint8_t *a, size_t an, const uint8_t *b, size_t bn, const uint8_t *c, size_t cn, uint8_t out[32]) {
	SHA256_CTX ctx;
	SHA256_Init(&ctx);
	SHA256_Update(&ctx, a, an);
	if (bn) SHA256_Update(&ctx, b, bn);
	if (cn) SHA256_Update(&ctx, c, cn);
	SHA256_Final(out, &ctx);
}

static int hex_is(const uint8_t h[32], const uint8_t *p) {
	for (int i = 0; i < 32; i++)
		if (p[2 * i] != (uint8_t)HEXD[h[i] >> 4] || p[2 * i + 1] != (uint8_t)HEXD[h[i] & 15]) return 0;
	return 1;
}

static double getf(const uint8_t *st, size_t at) { double v; memcpy(&v, st + at, 8); return v; }
static void putf(uint8_t *st, size_t at, double v) { memcpy(st + at, &v, 8); }

int vigil_log_run(const uint8_t *buf, size_t len, size_t start, uint8_t *st) {
	uint8_t *head = st, *head_hex = st + 32, (*range)[32] = (uint8_t (*)[32])(st + 112);
	uint64_t expect = (uint64_t)getf(st, 96);
	uint64_t size = (uint64_t)getf(st, 104);
	int count = __builtin_popcountll(size);
	uint64_t lines = 0;
	size_t pos = start, last_cut = 0, time_from = 0, time_to = 0;
	static const uint8_t close = '}';
	while (pos < len) {
		const uint8_t *nlp = memchr(buf + pos, '\n', len - pos);
		if (!nlp) break;
		size_t e = (size_t)(nlp - buf), n = e - pos;
		const uint8_t *l = buf + pos;
		if (n < SUFFIX + 8 || l[4] != 'q') break; /* short, or a seal: TypeScript's */
		size_t cut = e - SUFFIX;
		const uint8_t *sfx = buf + cut;
		if (memcmp(sfx, PREFIX, 18) || memcmp(sfx + 82, MIDDLE, 10) || memcmp(sfx + 156, "\"}}", 3)) break;
		if (memcmp(sfx + 18, head_hex, 64)) break;
		if (memcmp(l, "{\"seq\":", 7)) break;
		size_t i = pos + 7;
		uint64_t seq = 0;
		while (i < cut && i < pos + 7 + 16 && buf[i] >= '0' && buf[i] <= '9') seq = seq * 10 + (uint64_t)(buf[i++] - '0');
		if (i == pos + 7 || seq != expect || i + 9 > cut || memcmp(buf + i, TIME, 9)) break;
		i += 9;
		size_t tf = i;
		while (i < cut && buf[i] >= '0' && buf[i] <= '9') i++;
		if (i == tf || i >= cut || buf[i] != '"') break;
		size_t tt = i++;
		if (i + 9 > cut || memcmp(buf + i, HOST, 9)) break;
		for (i += 9; i < cut; i++) {
			if (buf[i] == '\\') i++;
			else if (buf[i] == '"') break;
		}
		if (i >= cut) break;
		if (i + 1 + 15 <= cut && !memcmp(buf + i + 1, AGENT, 15)) break; /* the agent's own record */
		uint8_t h[32];
		sha(head, 32, l, cut - pos, &close, 1, h);
		if (!hex_is(h, sfx + 92)) break;
		/* Merkle leaf, then the compact range's carries. */
		static const uint8_t zero = 0, one = 1;
		uint8_t node[32];
		sha(&zero, 1, h, 32, NULL, 0, node);
		for (uint64_t s = size; s & 1; s >>= 1) {
			uint8_t pair[64];
			memcpy(pair, range[--count], 32);
			memcpy(pair + 32, node, 32);
			sha(&one, 1, pair, 64, NULL, 0, node);
		}
		memcpy(range[count++], node, 32);
		size++;
		memcpy(head, h, 32);
		memcpy(head_hex, sfx + 92, 64);
		expect++;
		lines++;
		last_cut = cut;
		time_from = tf;
		time_to = tt;
		pos = e + 1;
	}
	putf(st, 96, (double)expect);
	putf(st, 104, (double)size);
	putf(st, 2160, (double)lines);
	putf(st, 2168, (double)pos);
	putf(st, 2176, (double)last_cut);
	putf(st, 2184, (double)time_from);
	putf(st, 2192, (double)time_to);
	return 0;
}
