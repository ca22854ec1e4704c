/*  wan21_tok.h - the umT5 tokenizer of Wan 2.1 (class wan21_tok): prompt cleaning as the
    official HuggingfaceTokenizer(clean='whitespace') does it, then the SentencePiece unigram
    model (google/umt5-xxl/spiece.model), EOS appended, truncation and padding to text_len.

    Cleaning, in the official order:
      1. ftfy.fix_text, partially: terminal escape sequences removed, C1 controls decoded as
         windows-1252, other control characters removed, curly quotes straightened, and
         (ftfy's "auto" HTML mode) one pass of semicolon-terminated entities when the text
         has no '<'. Not done: ftfy's mojibake repair (fix_encoding) and its NFC step (the
         SentencePiece nmt_nfkc normaliser applies NFKC, which subsumes NFC).
      2. html.unescape twice: named entities (the common ones: all Latin-1 names, the legacy
         no-semicolon forms with Python's longest-prefix rule, typographic, arrows, maths,
         Greek), &#N; and &#xH; with Python's rules (windows-1252 for 0x80-0x9f, U+FFFD for
         0, surrogates and > 0x10FFFF, noncharacters dropped).
      3. strip, collapse every run of Unicode whitespace to one space, strip.
    Invalid UTF-8 bytes become U+FFFD. Text beyond 64 Ki code points is cut at a whitespace
    (it lies far past the 512-token window).
*/
#ifndef WAN21_TOK_H_INCLUDED
#define WAN21_TOK_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _wan21_tok_t wan21_tok_t;

//  Loads spiece.model, a directory holding it (google/umt5-xxl/), or a Wan model directory
//  with google/umt5-xxl/spiece.model. NULL with *err.
wan21_tok_t *wan21_tok_new (const char *path, char **err);
void wan21_tok_destroy (wan21_tok_t **self_p);

int wan21_tok_vocab_size (wan21_tok_t *self);
int wan21_tok_eos_id (wan21_tok_t *self);
int wan21_tok_pad_id (wan21_tok_t *self);

//  Cleans and encodes text into ids[max_len] and mask[max_len] (mask may be NULL): the
//  pieces, truncated to max_len - 1, then EOS, then pad ids with mask 0. Returns the number
//  of real tokens (EOS included, >= 1), or -1 with *err (caller frees) when err is not NULL.
int wan21_tok_encode (wan21_tok_t *self, const char *text, int max_len, int32_t *ids,
                      uint8_t *mask, char **err);
//  Ids back to text (for tests and logs); caller frees.
char *wan21_tok_decode (wan21_tok_t *self, const int32_t *ids, int n);

//  The official prompt cleaning alone (UTF-8 in and out); caller frees.
char *wan21_tok_clean (const char *text);

void wan21_tok_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
